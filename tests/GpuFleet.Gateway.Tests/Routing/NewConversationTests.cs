using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Routing;

/// <summary>
/// An idle fleet of three real workers behind a real gateway: new conversations spread, and each next turn returns to
/// its worker and finds its cache. On the hybrid model (qwen35, the fleet's target) a worker keeps each conversation in
/// a slot or host snapshots (every 512 tokens here, since a next turn's prompt does not extend the previous one's end);
/// the attention-only tiny model would trim an idle slot to any shared prefix (the chat template's first tokens), so a
/// worker there keeps one idle conversation only, whatever the routing.
/// </summary>
public sealed class NewConversationTests : IAsyncLifetime
{
    private const string Model = "tiny-qwen35";
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-spread-").FullName;
    private readonly List<WorkerProcess> _workers = [];
    private GatewayProcess? _gateway;

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, Model + ".gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen35, DemoModelSize.Tiny) { Tokenizer = TestModels.QwenTokenizer });
        _workers.AddRange(await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            WorkerProcess.StartAsync(model, "--name", $"w{i}", "--slots", "2", "--ctx-size", "8192", "--enable-thinking", "false"))));
        _gateway = await GatewayProcess.StartAsync([.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await _gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 3);
    }

    [Fact]
    public async Task New_conversations_spread_over_an_idle_fleet_and_each_next_turn_returns_to_its_worker_with_its_cache()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        var conversations = Enumerable.Range(0, 6).Select(i => RoutingTests.Conversation($"spread-{i}")).ToList();
        var firsts = new List<RoutingTests.ChatResult>();
        foreach (var conversation in conversations)
        {
            firsts.Add(await RoutingTests.ChatAsync(http, _gateway!.BaseAddress, conversation, Model)); // one by one: the fleet is idle for each
        }

        var workers = string.Join(", ", firsts.Select(f => f.Worker));
        Assert.True(firsts.Select(f => f.Worker).Distinct().Count() >= 2, $"six new conversations went to {workers}");

        for (var i = 0; i < conversations.Count; i++)
        {
            conversations[i].Add(new { role = "assistant", content = firsts[i].Text });
            conversations[i].Add(new { role = "user", content = "And the next step?" });
            var next = await RoutingTests.ChatAsync(http, _gateway!.BaseAddress, conversations[i], Model);
            Assert.True(next.Worker == firsts[i].Worker, $"conversation {i} went to {next.Worker} ({next.Route}), its first turn to {firsts[i].Worker}; first turns: {workers}");
            Assert.True(next.CachedTokens > 0, $"conversation {i} on {next.Worker} ({next.Route}): cached {next.CachedTokens} of {next.PromptTokens}");
        }
    }

    public async Task DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
