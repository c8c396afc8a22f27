using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using GpuFleet.Gateway.State;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Bench.Gateway;

/// <summary>
/// The gateway's routing decision, in process and timed alone: inspect a multi-turn coding-agent chat request (parse,
/// canonical rendering, keyed prefix-block hashes), look it up in the affinity index in a real redis-server (one
/// round trip through StackExchange.Redis), and let the time-to-first-token policy pick among eight workers with live load reports.
/// </summary>
internal static class DecisionBenchmark
{
    private const int Workers = 8;

    public static async Task<double> MeasureP99MicrosecondsAsync(ChildProcesses processes, int iterations, CancellationToken cancel)
    {
        var port = FreePort.Next();
        var redisServer = processes.Start("redis", "redis-server",
            ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Redis:Configuration"] = $"127.0.0.1:{port}" }).Build();
        await using var redis = new GatewayRedis(configuration, NullLoggerFactory.Instance);
        var ready = Stopwatch.StartNew();
        while (!redis.Available)
        {
            if (redisServer.Process.HasExited || ready.Elapsed > TimeSpan.FromSeconds(20))
            {
                throw new InvalidOperationException($"redis-server did not come up:\n{redisServer.Output}");
            }

            await Task.Delay(20, cancel);
        }

        var options = new RoutingOptions { AffinityKey = Convert.ToBase64String(new byte[32]) };
        var hasher = new PrefixHasher(Convert.FromBase64String(options.AffinityKey), options.BlockBytes);
        var inspector = new RequestInspector(hasher);
        var affinity = new AffinityIndex(redis, hasher, options, TimeProvider.System, NullLogger<AffinityIndex>.Instance);
        var board = new WorkerLoadBoard(TimeProvider.System);
        var traffic = new WorkerTraffic(TimeProvider.System);
        var policy = new TimeToFirstTokenPolicy(board, traffic, options, new BytesPerToken(options), new WorkerEjections(new PassiveHealthOptions(), TimeProvider.System));
        var destinations = Enumerable.Range(0, Workers).Select(i => new DestinationState($"10.0.0.{i}:8080")).ToList();
        var ids = destinations.Select(d => d.DestinationId).ToList();
        var cluster = new ClusterState("workers");

        // Twenty coding-agent conversations spread over the workers (recorded in Redis), then decided again and again.
        var bodies = Enumerable.Range(0, 20).Select(Conversation).ToList();
        var sample = inspector.Inspect(bodies[0], chat: true, sessionHeader: null);
        for (var i = 0; i < bodies.Count; i++)
        {
            var request = inspector.Inspect(bodies[i], chat: true, sessionHeader: null);
            await affinity.RecordSharedAsync(request.Model, request.Blocks, ids[i % Workers], null);
        }

        var samples = new double[iterations];
        var inspectSamples = new double[iterations];
        var lookupSamples = new double[iterations];
        var inspectAllocated = 0L;
        var collections = 0;
        // As many unrecorded decisions first, so that tiered compilation has settled before timing.
        for (var i = -iterations; i < iterations; i++)
        {
            Report(board, ids, Math.Abs(i));
            var body = bodies[((i % bodies.Count) + bodies.Count) % bodies.Count];
            if (i == 0)
            {
                collections = GC.CollectionCount(0);
            }

            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var clock = Stopwatch.GetTimestamp();
            var request = inspector.Inspect(body, chat: true, sessionHeader: null);
            if (i >= 0)
            {
                inspectAllocated += GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            }

            var inspected = Stopwatch.GetTimestamp();
            var routing = new InspectedRequestFeature { Request = request, PromptTokens = (int)(request.PromptBytes / 4) };
            routing.Affinity = await affinity.LookupAsync(request.Model, request.Blocks, ids, request.SessionKey, cancel);
            var looked = Stopwatch.GetTimestamp();
            var context = new DefaultHttpContext();
            context.Features.Set(routing);
            _ = policy.PickDestination(context, cluster, destinations) ?? throw new InvalidOperationException("no worker picked");
            var elapsed = Stopwatch.GetElapsedTime(clock).TotalMicroseconds;
            if (i >= 0)
            {
                samples[i] = elapsed;
                inspectSamples[i] = Stopwatch.GetElapsedTime(clock, inspected).TotalMicroseconds;
                lookupSamples[i] = Stopwatch.GetElapsedTime(inspected, looked).TotalMicroseconds;
            }
        }

        collections = GC.CollectionCount(0) - collections;
        if (affinity.Fallbacks > 0)
        {
            throw new InvalidOperationException($"{affinity.Fallbacks} lookups fell back to local state: the figure would not include the Redis round trip");
        }

        Array.Sort(samples);
        Array.Sort(inspectSamples);
        Array.Sort(lookupSamples);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"decision: {iterations} decisions (inspect a {bodies[0].Length / 1024} KB chat body, Redis lookup of {sample.Blocks.Count} blocks x {Workers} workers, policy): p50 {samples[iterations / 2]:F1} us, p99 {samples[(int)(iterations * 0.99)]:F1} us; " +
            $"inspect p50 {inspectSamples[iterations / 2]:F1} p99 {inspectSamples[(int)(iterations * 0.99)]:F1} us, " +
            $"Redis lookup p50 {lookupSamples[iterations / 2]:F1} p99 {lookupSamples[(int)(iterations * 0.99)]:F1} us; " +
            $"inspect allocates {inspectAllocated / iterations} B per decision, {collections} gen0 collections during the timed decisions"));
        return samples[(int)(iterations * 0.99)];
    }

    /// <summary>Load reports that change between decisions, as the status streams would.</summary>
    private static void Report(WorkerLoadBoard board, List<string> ids, int step)
    {
        for (var w = 0; w < ids.Count; w++)
        {
            board.Update(ids[w], new WorkerStatus
            {
                Name = $"w{w}",
                Ready = true,
                Engine = new EngineStatus
                {
                    TotalSlots = 8,
                    RunningSlots = (uint)((w + step) % 9),
                    FreeSlots = (uint)(8 - Math.Min(8, (w + step) % 9)),
                    QueueDepth = (uint)((w * step) % 3),
                    QueueCapacity = 32,
                    PrefillTokensPerSecond = 1500 + (100 * w),
                    PendingPrefillTokens = (ulong)(((w + step) % 4) * 2000),
                },
            });
        }
    }

    private static byte[] Conversation(int index)
    {
        var messages = new List<Dictionary<string, string>>
        {
            new() { ["role"] = "system", ["content"] = string.Concat(Enumerable.Repeat($"You are a coding agent (session {index}). Follow the repository's style guide. ", 80)) },
        };
        for (var turn = 0; turn < 12; turn++)
        {
            messages.Add(new() { ["role"] = "user", ["content"] = string.Concat(Enumerable.Repeat($"Turn {turn}: read src/File{turn}.cs and explain it. ", 12)) });
            messages.Add(new() { ["role"] = "assistant", ["content"] = string.Concat(Enumerable.Repeat($"File{turn}.cs declares a class and two methods. ", 12)) });
        }

        return JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object> { ["model"] = "qwen3.6-27b", ["max_tokens"] = 512, ["messages"] = messages });
    }
}
