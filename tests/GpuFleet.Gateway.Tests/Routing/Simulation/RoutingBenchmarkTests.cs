using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using GpuFleet.Bench.Routing;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Peers;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Routing.Simulation;

/// <summary>
/// The routing benchmark's harness (bench/GpuFleet.Bench, <c>routing</c>): its workloads are reproducible from a seed, and a
/// short run (two policies, four simulated workers on the RTX 3090 cost model, the real gateway) completes and reports.
/// </summary>
public sealed class RoutingBenchmarkTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-routing-bench-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("mix")]
    [InlineData("skewed")]
    [InlineData("llmd")]
    public void Workloads_are_the_same_for_a_seed_and_differ_for_another(string workload)
    {
        var kind = Enum.Parse<WorkloadKind>(workload, ignoreCase: true);
        var first = Serialize(RoutingWorkload.Generate(kind, seed: 7, sessionsPerSecond: 0.5, seconds: 120, "m", "s"));
        var again = Serialize(RoutingWorkload.Generate(kind, seed: 7, sessionsPerSecond: 0.5, seconds: 120, "m", "s"));
        var other = Serialize(RoutingWorkload.Generate(kind, seed: 8, sessionsPerSecond: 0.5, seconds: 120, "m", "s"));

        Assert.NotEmpty(first);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Theory]
    [InlineData("mix")]
    [InlineData("skewed")]
    [InlineData("llmd")]
    public void Another_salt_changes_what_the_prompt_starts_with_the_tools_and_the_system_prompt(string workload)
    {
        // The workers keep their caches from one policy's run to the next: a prefix that two runs share would be a
        // head start for the later policy. The tools render first in the chat template, then the system prompt.
        var kind = Enum.Parse<WorkloadKind>(workload, ignoreCase: true);
        var first = RoutingWorkload.Generate(kind, seed: 7, sessionsPerSecond: 0.5, seconds: 120, "m", "r000");
        var second = RoutingWorkload.Generate(kind, seed: 7, sessionsPerSecond: 0.5, seconds: 120, "m", "r001");

        Assert.Equal(first.Count, second.Count);
        Assert.All(first.Zip(second), pair =>
        {
            var (a, b) = (pair.First.Turns[0].Body, pair.Second.Turns[0].Body);
            Assert.Equal(a["tools"] is null, b["tools"] is null);
            if (a["tools"] is { } tools)
            {
                Assert.NotEqual(tools[0]!.ToJsonString(), b["tools"]![0]!.ToJsonString());
            }

            Assert.NotEqual(a["messages"]![0]!["content"]!.GetValue<string>(), b["messages"]![0]!["content"]!.GetValue<string>());
        });
    }

    [Fact]
    public void A_higher_rate_brings_the_same_sessions_sooner()
    {
        var slow = RoutingWorkload.Generate(WorkloadKind.Mix, seed: 3, sessionsPerSecond: 0.2, seconds: 600, "m", "s");
        var fast = RoutingWorkload.Generate(WorkloadKind.Mix, seed: 3, sessionsPerSecond: 0.4, seconds: 300, "m", "s");

        Assert.Equal(slow.Count, fast.Count);
        Assert.All(slow.Zip(fast), p => Assert.Equal(p.First.ArrivalSeconds / 2, p.Second.ArrivalSeconds, 9));
        Assert.Equal(Serialize(slow).Select(s => s[(s.IndexOf('|', StringComparison.Ordinal) + 1)..]), Serialize(fast).Select(s => s[(s.IndexOf('|', StringComparison.Ordinal) + 1)..]));
    }

    [Fact]
    public async Task A_short_run_of_two_policies_on_four_simulated_workers_completes_and_reports()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, "sim-qwen35.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen35, DemoModelSize.Tiny) { Tokenizer = TestModels.QwenTokenizer });
        var options = new RoutingBenchOptions
        {
            Workers = 4,
            Seconds = 15,
            Speedup = 10,
            Policies = [RoundRobinPolicy.PolicyName, RoutingOptions.DefaultPolicy],
            Workloads = [WorkloadKind.Mix],
        };
        using var output = new StringWriter();
        // Starting four workers and two gateways on a busy 2-core machine takes longer than one default test timeout.
        using var timeout = new CancellationTokenSource(TestTimeouts.Default * 5);

        var summaries = await RoutingBenchmark.RunAsync(options, model, output, TextWriter.Null, timeout.Token);

        Assert.Equal([RoundRobinPolicy.PolicyName, RoutingOptions.DefaultPolicy], summaries.Select(s => s.Policy));
        Assert.All(summaries, s =>
        {
            Assert.True(s.Requests > 0, $"{s.Policy}: no requests");
            Assert.Equal(0, s.Failed);
            Assert.True(s.TtftP90 > 0 && s.TtftP99 >= s.TtftP90, $"{s.Policy}: TTFT p90 {s.TtftP90}, p99 {s.TtftP99}");
            Assert.InRange(s.HitRatio, 0, 1);
        });
        Assert.Contains("round-robin", output.ToString(), StringComparison.Ordinal);
        Assert.Matches(@"^routing: ttft_p90_vs_round_robin=\d+\.\d\d ttft_p90_vs_best_peer=\d+\.\d\d hit_ratio_vs_oracle=\d+\.\d\d skewed_p99_vs_least_queue=n/a$",
            RoutingBenchmark.SummaryLine(summaries, options.Load));
    }

    [Fact]
    public void The_plot_is_a_valid_png_whose_pixels_inflate_to_its_size()
    {
        var path = Path.Combine(_directory, "plot.png");
        RunSummary Run(string policy, double load, double p90) => new(policy, "mix", load, 10, 0, 1, p90, p90, 0.1, 10, 0.5, 0.9, 1.2);

        TtftPlot.Write(path, [Run("round-robin", 0.4, 3), Run("round-robin", 0.8, 20), Run("gpufleet", 0.4, 1), Run("gpufleet", 0.8, 4)]);

        var png = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }, png[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        var width = (png[16] << 24) | (png[17] << 16) | (png[18] << 8) | png[19];
        var height = (png[20] << 24) | (png[21] << 16) | (png[22] << 8) | png[23];
        var idat = 8 + 25; // signature, then IHDR: length, type, 13 bytes, CRC
        var length = (png[idat] << 24) | (png[idat + 1] << 16) | (png[idat + 2] << 8) | png[idat + 3];
        Assert.Equal("IDAT", System.Text.Encoding.ASCII.GetString(png, idat + 4, 4));
        using var inflated = new MemoryStream();
        using (var zlib = new System.IO.Compression.ZLibStream(new MemoryStream(png, idat + 8, length), System.IO.Compression.CompressionMode.Decompress))
        {
            zlib.CopyTo(inflated);
        }

        Assert.Equal(height * ((width * 3) + 1), inflated.Length);
        Assert.Contains(inflated.ToArray(), b => b != 255 && b != 0); // coloured lines were drawn
    }

    [Fact]
    public void The_plot_can_be_drawn_again_from_the_requests_file_of_a_run()
    {
        var csv = Path.Combine(_directory, "requests.csv");
        var rows = Enumerable.Range(1, 10).Select(i => $"gpufleet,mix,0.8,{i},0,agent,{i}.000,sim-00,affinity,100,50,50,{i}.000,32,")
            .Append("gpufleet,mix,0.8,11,0,agent,11.000,sim-00,affinity,100,0,0,,0,\"refused, then cut\"") // failed: no TTFT
            .Append("gpufleet,skewed,0.8,1,0,agent,1.000,sim-00,affinity,100,50,50,99.000,32,")
            .Append("round-robin,mix,0.4,1,0,chat,1.000,sim-01,round-robin,10,0,0,0.500,64,");
        File.WriteAllLines(csv, ["policy,workload,load,session,turn,kind,sent_at,worker,route,prompt_tokens,cached_tokens,oracle_tokens,ttft,output_tokens,error", .. rows]);

        var runs = RequestCsv.ReadTtft(csv, "mix").OrderBy(r => r.Policy).ToList();

        Assert.Equal([("gpufleet", 0.8, 10, 9.0), ("round-robin", 0.4, 1, 0.5)], runs.Select(r => (r.Policy, r.Load, r.Requests, r.TtftP90)));
        var plot = Path.Combine(_directory, "again.png");
        TtftPlot.Write(plot, runs);
        Assert.True(new FileInfo(plot).Length > 1000);
    }

    /// <summary>
    /// Each session as its arrival, then its kind and the SHA-256 of its turns' think times, output limits and bodies as
    /// JSON bytes: byte-for-byte comparison without building the workload's strings (an agent session's bodies are
    /// megabytes, and the test compared them as strings for most of a minute).
    /// </summary>
    private static List<string> Serialize(IReadOnlyList<WorkloadSession> sessions) =>
        [.. sessions.Select(s => $"{s.ArrivalSeconds:R}|{s.Kind}:{Hash(s.Turns)}")];

    private static string Hash(IReadOnlyList<WorkloadTurn> turns)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var stream = new HashingStream(sha);
        foreach (var turn in turns)
        {
            stream.Write(Encoding.UTF8.GetBytes($"\n{turn.ThinkSeconds:R} {turn.MaxTokens} "));
            using (var json = new Utf8JsonWriter(stream))
            {
                turn.Body.WriteTo(json);
            }
        }

        return Convert.ToHexString(sha.GetHashAndReset());
    }

    /// <summary>A write-only stream into a hash.</summary>
    private sealed class HashingStream(IncrementalHash hash) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => hash.AppendData(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => hash.AppendData(buffer);

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
