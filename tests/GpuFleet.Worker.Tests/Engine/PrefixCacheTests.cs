using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Models;
using static GpuFleet.Worker.Tests.Engine.EngineTestKit;

namespace GpuFleet.Worker.Tests.Engine;

/// <summary>
/// Prefix reuse must be invisible in the output: greedy tokens after reuse are identical to a cold run,
/// on plain attention (qwen3, KV trim) and on the hybrid qwen35 (state snapshots), and the reused-token
/// counts are exactly the prefix that was skipped.
/// </summary>
[Collection(LlamaCollection.Name)]
public sealed class PrefixCacheTests(TestModels models)
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Second_turn_of_a_conversation_reuses_the_first_and_matches_a_cold_run(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model, slots: 2);
        var turn1 = ChatPrompt(model, "What is the capital of France?");
        var reply = await engine.RunAsync(Greedy(turn1, 12));
        var turn2 = Continue(model, turn1, reply.Tokens, "And of Italy?");

        var warm = await engine.RunAsync(Greedy(turn2, 16));
        var cold = await RunColdAsync(model, turn2);

        Assert.Equal(cold.Tokens, warm.Tokens);
        Assert.Equal(0, cold.Usage.CachedPromptTokens);
        // The slot holds turn 1 and the reply except its last sampled token, which was never decoded.
        Assert.Equal(turn1.Length + reply.Tokens.Count - 1, warm.Usage.CachedPromptTokens);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Shared_system_prompt_with_a_different_question_matches_a_cold_run(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model, slots: 1);
        var first = ChatPrompt(model, "Tell me about cats.");
        var second = ChatPrompt(model, "Tell me about dogs and wolves.");
        await engine.RunAsync(Greedy(first, 8));

        var warm = await engine.RunAsync(Greedy(second, 16));
        var cold = await RunColdAsync(model, second);

        Assert.Equal(cold.Tokens, warm.Tokens);
        var common = first.Zip(second).TakeWhile(p => p.First == p.Second).Count();
        // Plain attention trims the slot to the common prefix; the hybrid model cannot trim, and without
        // interval snapshots it has no snapshot inside the shared part, so it prefills everything.
        var expected = model.IsHybrid ? 0 : common;
        Assert.Equal(expected, warm.Usage.CachedPromptTokens);
    }

    [Fact]
    public async Task Hybrid_model_snapshots_the_system_turn_so_another_conversation_reuses_it_and_matches_a_cold_run()
    {
        var model = models.Get(DemoArchitecture.Qwen35);
        await using var engine = await StartAsync(model, slots: 1);
        var imStart = model.Tokenize("<|im_start|>").Single();
        var first = ChatPrompt(model, "Tell me about cats.");
        var second = ChatPrompt(model, "Tell me about dogs and wolves.");
        var systemTurn = Array.IndexOf(first, imStart, 1);
        await engine.RunAsync(Greedy(first, 8) with { SharedPrefixLength = systemTurn });
        await engine.RunAsync(Greedy(ChatPrompt(model, "Something else entirely."), 8) with { SharedPrefixLength = systemTurn });

        var warm = await engine.RunAsync(Greedy(second, 16) with { SharedPrefixLength = systemTurn });
        var cold = await RunColdAsync(model, second);

        Assert.Equal(cold.Tokens, warm.Tokens);
        Assert.Equal(systemTurn, warm.Usage.CachedPromptTokens);
    }

    [Fact]
    public async Task A_conversations_newer_prompt_snapshot_replaces_the_older_one_it_extends_but_the_shared_one_stays()
    {
        var model = models.Get(DemoArchitecture.Qwen35);
        await using var engine = await StartAsync(model, slots: 1);
        var imStart = model.Tokenize("<|im_start|>").Single();
        var prompt = ChatPrompt(model, "Turn 1.");
        var systemTurn = Array.IndexOf(prompt, imStart, 1);
        for (var turn = 2; turn <= 6; turn++)
        {
            var reply = await engine.RunAsync(Greedy(prompt, 6) with { SharedPrefixLength = systemTurn });
            prompt = Continue(model, prompt, reply.Tokens, $"Turn {turn}.");
        }

        var last = await engine.RunAsync(Greedy(prompt, 6) with { SharedPrefixLength = systemTurn });

        // Shared system turn, the latest prompt snapshot and the turn ends: the older prompt snapshots were replaced.
        Assert.True(last.Usage.CachedPromptTokens > prompt.Length / 2, $"{last.Usage.CachedPromptTokens} of {prompt.Length} cached");
        Assert.True(engine.GetStatus().HostCacheEntries <= 4, $"{engine.GetStatus().HostCacheEntries} snapshots for one conversation of six turns");
        var other = await engine.RunAsync(Greedy(ChatPrompt(model, "A new conversation."), 4) with { SharedPrefixLength = systemTurn });
        Assert.Equal(systemTurn, other.Usage.CachedPromptTokens);
        Assert.Equal(0, engine.GetStatus().HostCacheEvictions);
    }

    [Fact]
    public async Task Hybrid_interval_snapshots_let_a_different_question_reuse_the_shared_system_prompt()
    {
        var model = models.Get(DemoArchitecture.Qwen35);
        await using var engine = await InferenceEngine.StartAsync(model, new EngineOptions
        {
            Slots = 1,
            ContextSize = 1024,
            SnapshotInterval = 16,
            HostCacheBytes = 64 << 20,
            Threads = 2,
        });
        var system = "You are a meticulous assistant. Answer in one short sentence, and never use lists.";
        var first = ChatPrompt(model, "Tell me about cats.", system);
        var second = ChatPrompt(model, "Tell me about dogs and wolves.", system);
        await engine.RunAsync(Greedy(first, 8));

        var warm = await engine.RunAsync(Greedy(second, 16));
        var cold = await RunColdAsync(model, second);

        Assert.Equal(cold.Tokens, warm.Tokens);
        var common = first.Zip(second).TakeWhile(p => p.First == p.Second).Count();
        Assert.Equal(common / 16 * 16, warm.Usage.CachedPromptTokens);
        Assert.True(warm.Usage.CachedPromptTokens >= 16);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Repeated_prompt_reuses_all_but_its_last_token(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model, slots: 2);
        var prompt = ChatPrompt(model, "Repeat after me: the quick brown fox.");

        var first = await engine.RunAsync(Greedy(prompt, 10));
        var again = await engine.RunAsync(Greedy(prompt, 10));

        Assert.Equal(first.Tokens, again.Tokens);
        Assert.Equal(0, first.Usage.CachedPromptTokens);
        Assert.Equal(prompt.Length - 1, again.Usage.CachedPromptTokens);
    }

    [Fact]
    public async Task Hybrid_model_restores_an_evicted_conversation_from_the_host_snapshot_cache()
    {
        var model = models.Get(DemoArchitecture.Qwen35);
        await using var engine = await StartAsync(model, slots: 1);
        var turn1 = ChatPrompt(model, "Plan a trip to Rome.");
        var reply = await engine.RunAsync(Greedy(turn1, 12));
        // Another conversation takes the only slot, so turn 1 survives only as a host snapshot.
        await engine.RunAsync(Greedy(ChatPrompt(model, "Something unrelated entirely.", "Another system prompt."), 12));
        var turn2 = Continue(model, turn1, reply.Tokens, "What about Florence?");

        var warm = await engine.RunAsync(Greedy(turn2, 16));
        var cold = await RunColdAsync(model, turn2);

        Assert.Equal(cold.Tokens, warm.Tokens);
        Assert.Equal(turn1.Length + reply.Tokens.Count - 1, warm.Usage.CachedPromptTokens);
        var status = engine.GetStatus();
        Assert.True(status.HostCacheEntries >= 3, $"{status.HostCacheEntries} snapshots");
        Assert.InRange(status.HostCacheBytes, 1, status.HostCacheCapacityBytes);
        Assert.Equal(turn1.Length + reply.Tokens.Count - 1, status.ReusedPromptTokensTotal);
    }

    [Fact]
    public async Task Host_snapshot_cache_stays_within_its_byte_budget()
    {
        var model = models.Get(DemoArchitecture.Qwen35);
        // Room for only a few snapshots of these prompts.
        await using var engine = await StartAsync(model, slots: 1, hostCacheBytes: 200_000);
        for (var i = 0; i < 12; i++)
        {
            await engine.RunAsync(Greedy(ChatPrompt(model, $"Question {i}: {new string('x', i * 3)}"), 6));
        }

        var status = engine.GetStatus();
        Assert.InRange(status.HostCacheBytes, 1, 200_000);
        Assert.InRange(status.HostCacheEntries, 1, 11);
    }

    [Fact]
    public async Task Status_reports_slots_memory_and_totals()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        await using var engine = await StartAsync(model, slots: 3, contextSize: 512);
        var prompt = ChatPrompt(model, "Status check.");
        await engine.RunAsync(Greedy(prompt, 5));
        await engine.RunAsync(Greedy(prompt, 5));

        var status = engine.GetStatus();
        Assert.Equal(3, status.TotalSlots);
        Assert.Equal(3, status.FreeSlots);
        Assert.Equal(512, status.ContextPerRequest);
        Assert.Equal(512, status.KvTokensTotal); // one pool shared by the three slots
        Assert.Equal(prompt.Length + 4, status.KvTokensUsed);
        Assert.True(status.KvBytesTotal > status.KvBytesUsed && status.KvBytesUsed > 0);
        Assert.Equal(2 * prompt.Length, status.PromptTokensTotal);
        Assert.Equal(prompt.Length - 1, status.ReusedPromptTokensTotal);
        Assert.Equal(10, status.GeneratedTokensTotal);
        Assert.Equal(2, status.RequestsCompleted);
        Assert.True(status.DecodeTokensPerSecond > 0);
        Assert.True(status.PrefillTokensPerSecond > 0);
        Assert.Equal(0, status.HostCacheCapacityBytes); // plain attention trims KV; no snapshots
    }

    private static async Task<CollectedGeneration> RunColdAsync(GpuFleet.Worker.LlamaCpp.LlamaModel model, int[] prompt)
    {
        await using var cold = await StartAsync(model, slots: 1, hostCacheBytes: 0);
        return await cold.RunAsync(Greedy(prompt, 16));
    }
}
