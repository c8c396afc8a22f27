using System.Collections.Concurrent;
using System.Diagnostics;
using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Engine.Compute;
using GpuFleet.Worker.Engine.CostModel;
using GpuFleet.Worker.Engine.Scheduling;
using GpuFleet.Worker.Engine.Simulated;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;
using Microsoft.Extensions.Logging;
using static GpuFleet.Worker.Tests.Engine.EngineTestKit;

namespace GpuFleet.Worker.Tests.Engine.CostModel;

/// <summary>
/// The real scheduler over the cost model on a vocabulary-only model: the prefix-cache, snapshot and admission behaviour
/// of the scheduler tests that do not depend on the model's arithmetic, plus the model's own costs.
/// </summary>
[Collection(LlamaCollection.Name)]
public sealed class CostModelEngineTests(TestModels models) : IDisposable
{
    // No weights: any decode with this model through llama.cpp would fail, so everything below is the cost model's.
    private readonly LlamaModel _vocabulary = LlamaModel.Load(models.PathOf(DemoArchitecture.Qwen35), vocabularyOnly: true);

    public void Dispose() => _vocabulary.Dispose();

    private Task<InferenceEngine> StartAsync(string profile = CostModelProfiles.Instant, int slots = 2, int contextSize = 0, long hostCacheBytes = 8L << 30, double speedup = 1, int replyTokens = 16,
        TimeSpan? prefillOvertakeLimit = null) =>
        InferenceEngine.StartAsync(_vocabulary, new CostModelBackend(_vocabulary, CostModelProfiles.Find(profile)!, speedup, replyTokens), new EngineOptions
        {
            Slots = slots,
            ContextSize = contextSize,
            HostCacheBytes = hostCacheBytes,
            PrefillOvertakeLimit = prefillOvertakeLimit ?? new EngineOptions().PrefillOvertakeLimit,
        });

    [Fact]
    public async Task Answers_are_the_simulated_text_ending_in_stop_after_the_reply_tokens()
    {
        await using var engine = await StartAsync(replyTokens: 5);
        var prompt = ChatPrompt(_vocabulary, "Hello there");

        var answer = await engine.RunAsync(Greedy(prompt, maxTokens: 64) with { IgnoreEndOfGeneration = false });
        var capped = await engine.RunAsync(Greedy(prompt, maxTokens: 3) with { IgnoreEndOfGeneration = false });

        Assert.Equal(FinishReason.Stop, answer.Reason);
        Assert.Equal(5, answer.Tokens.Count);
        Assert.StartsWith(answer.Text, SimulatedEngine.ReplyText, StringComparison.Ordinal);
        Assert.Equal(FinishReason.Length, capped.Reason);
        Assert.Equal(3, capped.Tokens.Count);
    }

    [Fact]
    public async Task A_request_whose_client_stops_reading_sits_out_the_steps_until_it_reads_again_and_others_go_on()
    {
        await using var engine = await StartAsync(slots: 2, replyTokens: 1_000_000);
        using var stop = new CancellationTokenSource();
        var unread = engine.Submit(Greedy(ChatPrompt(_vocabulary, "Nobody reads this answer."), maxTokens: 60_000), stop.Token);
        Assert.True(unread.Accepted);

        // It produces up to the unread limit, then waits: its tokens stop there however long it is left alone.
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(engine.GetStatus().GeneratedTokensTotal >= Scheduler.UnreadTokenLimit));
        var other = await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, "Meanwhile, another request."), maxTokens: 300));
        Assert.Equal(300, other.Tokens.Count);
        Assert.InRange(engine.GetStatus().GeneratedTokensTotal - 300, Scheduler.UnreadTokenLimit, Scheduler.UnreadTokenLimit + 1);

        // Its client reads again: it goes on.
        var read = 0;
        await foreach (var _ in unread.Stream!.ReadAllAsync(stop.Token))
        {
            if (++read == 2 * Scheduler.UnreadTokenLimit)
            {
                break;
            }
        }

        Assert.True(engine.GetStatus().GeneratedTokensTotal - 300 > Scheduler.UnreadTokenLimit + 1);
        await stop.CancelAsync();
    }

    [Fact]
    public async Task Pool_and_state_sizes_are_the_profiles_and_reported_in_status()
    {
        await using var engine = await StartAsync(slots: 3);
        var prompt = ChatPrompt(_vocabulary, "How big is the pool?");
        await engine.RunAsync(Greedy(prompt, 4));

        var status = engine.GetStatus();
        Assert.Equal(65_536, engine.ContextPerRequest);
        Assert.Equal(65_536, status.KvTokensTotal);
        Assert.Equal((3 * (151L << 20)) + (65_536L * (64 << 10)), status.KvBytesTotal);
        Assert.Equal(1, status.RequestsCompleted);
        Assert.Equal(prompt.Length, status.PromptTokensTotal);
    }

    [Fact]
    public async Task Second_turn_of_a_conversation_restores_the_first_from_a_snapshot()
    {
        await using var engine = await StartAsync(slots: 1);
        var prompt = ChatPrompt(_vocabulary, "Turn 1.");
        var first = await engine.RunAsync(Greedy(prompt, 6));
        // Another conversation takes the only slot in between: the second turn can only come back from the host cache.
        await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, "Something else entirely."), 6));

        var next = Continue(_vocabulary, prompt, first.Tokens, "Turn 2.");
        var second = await engine.RunAsync(Greedy(next, 6));

        Assert.Equal(0, first.Usage.CachedPromptTokens);
        // The turn's last sampled token was never decoded, so the turn-end snapshot holds all but it.
        Assert.Equal(prompt.Length + first.Tokens.Count - 1, second.Usage.CachedPromptTokens);
        Assert.True(engine.GetStatus().HostCacheEntries > 0);
    }

    [Fact]
    public async Task Shared_system_prompt_snapshot_lets_another_conversation_reuse_it()
    {
        await using var engine = await StartAsync(slots: 1);
        var imStart = _vocabulary.Tokenize("<|im_start|>").Single();
        var first = ChatPrompt(_vocabulary, "Tell me about cats.");
        var systemTurn = Array.IndexOf(first, imStart, 1);
        await engine.RunAsync(Greedy(first, 8) with { SharedPrefixLength = systemTurn });
        await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, "Something else entirely."), 8) with { SharedPrefixLength = systemTurn });

        var other = await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, "Tell me about dogs and wolves."), 8) with { SharedPrefixLength = systemTurn });

        Assert.Equal(systemTurn, other.Usage.CachedPromptTokens);
    }

    [Fact]
    public async Task Blocks_a_running_prefill_has_yet_to_compute_are_reported_as_prefilling_until_it_computes_them()
    {
        // ~4 modelled seconds of prefill at ~1,000 tok/s, 2 s at 2x: a window of over a second to look at it mid-way.
        await using var engine = await StartAsync(CostModelProfiles.Rtx3090Qwen36, slots: 2, speedup: 2);
        var prompt = Enumerable.Range(0, 4000).Select(i => 3 + (i % 250)).ToArray();
        ulong[] blocks = [0xB1, 0xB2, 0xB3, 0xB4];
        var run = engine.RunAsync(Greedy(prompt, 2) with { PrefixBlocks = [.. blocks.Select((hash, i) => new PrefixBlock(hash, (i + 1) * 999))] });

        // Claimed from admission, so the gateway sends conversations sharing the prefix here; prefilling while uncomputed,
        // so its estimate counts their wait for them.
        await TestTimeouts.WaitUntilAsync(
            () => Task.FromResult(engine.GetStatus() is { PrefillingPrefixBlocks: var prefilling } && prefilling.Contains(0xB4UL) && !prefilling.Contains(0xB1UL)),
            () => $"prefilling {string.Join(", ", engine.GetStatus().PrefillingPrefixBlocks)}");
        var midway = engine.GetStatus();
        Assert.Subset(midway.HeldPrefixBlocks.ToHashSet(), blocks.ToHashSet());
        Assert.False(run.IsCompleted);

        await run.WithTimeout();

        Assert.Empty(engine.GetStatus().PrefillingPrefixBlocks);
        Assert.Subset(engine.GetStatus().HeldPrefixBlocks.ToHashSet(), blocks.ToHashSet());
    }

    [Fact]
    public async Task An_idle_slot_claims_no_blocks_that_only_its_evicted_snapshots_could_restore()
    {
        // Room for two snapshots: a request leaves two (its prompt, its turn end), so the next one's evict the first's.
        await using var engine = await StartAsync(slots: 3, hostCacheBytes: 400L << 20);
        var imStart = _vocabulary.Tokenize("<|im_start|>").Single();
        var cats = ChatPrompt(_vocabulary, "Tell me about cats.");
        var systemTurn = Array.IndexOf(cats, imStart, 1);
        await engine.RunAsync(Greedy(cats, 4) with { PrefixBlocks = [new PrefixBlock(0xCA75, systemTurn)] });
        Assert.Contains(0xCA75UL, engine.GetStatus().HeldPrefixBlocks);

        // Another conversation takes another free slot: the first one's slot still holds its tokens, but a hybrid
        // model's slot serves only a prompt extending all of them, so with its snapshots gone nothing holds the system turn.
        await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, "Something else entirely.", "Another system prompt."), 4));
        var dogs = await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, "Tell me about dogs."), 4));

        Assert.True(engine.GetStatus().HostCacheEvictions >= 2);
        Assert.Equal(0, dogs.Usage.CachedPromptTokens);
        Assert.DoesNotContain(0xCA75UL, engine.GetStatus().HeldPrefixBlocks);
    }

    [Fact]
    public async Task A_conversation_sharing_a_system_prompt_being_prefilled_waits_for_its_snapshot_instead_of_computing_it_again()
    {
        // ~3,000 system-prompt tokens: about 1.5 s of prefill at 2x on the card profile, so the second conversation arrives
        // while the first is still computing them. Side by side it would compute them too and find nothing cached.
        await using var engine = await StartAsync(CostModelProfiles.Rtx3090Qwen36, slots: 2, speedup: 2);
        var system = string.Join(' ', Enumerable.Repeat("You are a careful coding agent; read the files before you edit them.", 200));
        var imStart = _vocabulary.Tokenize("<|im_start|>").Single();
        var firstPrompt = ChatPrompt(_vocabulary, "Fix the failing test.", system);
        var systemTurn = Array.IndexOf(firstPrompt, imStart, 1);
        Assert.InRange(systemTurn, 2 * Scheduler.MinSharedPrefillTokens, firstPrompt.Length);
        var first = engine.RunAsync(Greedy(firstPrompt, 2) with { SharedPrefixLength = systemTurn });
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(engine.GetStatus().RunningSlots == 1));

        var second = await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, "Add a benchmark for the parser.", system), 2) with { SharedPrefixLength = systemTurn });

        Assert.Equal(0, (await first).Usage.CachedPromptTokens);
        Assert.Equal(systemTurn, second.Usage.CachedPromptTokens);
        Assert.Equal(2, second.Tokens.Count);
    }

    [Fact]
    public async Task A_prompt_gets_its_first_token_in_a_step_shared_only_with_prompts_that_get_theirs()
    {
        // The leader computes ~3,000 system-prompt tokens and ~1,300 of its own; a second conversation restores the system
        // prompt from the leader's snapshot and has ~2,700 tokens of its own left, so the leader stays first. The leader's
        // last steps are short (one stops at the token before its last for the prompt snapshot, one holds the last token):
        // filled with the other conversation's messages, they would delay the leader's first token by ~0.5 s each.
        var backend = new RecordingBackend(new CostModelBackend(_vocabulary, CostModelProfiles.Find(CostModelProfiles.Rtx3090Qwen36)!, 4, 16));
        await using var engine = await InferenceEngine.StartAsync(_vocabulary, backend, new EngineOptions { Slots = 2, HostCacheBytes = 8L << 30 });
        var system = string.Join(' ', Enumerable.Repeat("You are a careful coding agent; read the files before you edit them.", 200));
        var imStart = _vocabulary.Tokenize("<|im_start|>").Single();
        var leaderPrompt = ChatPrompt(_vocabulary, string.Join(' ', Enumerable.Repeat("Fix the failing parser test.", 200)), system);
        var systemTurn = Array.IndexOf(leaderPrompt, imStart, 1);
        var leader = engine.RunAsync(Greedy(leaderPrompt, 2) with { SharedPrefixLength = systemTurn });
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(engine.GetStatus().RunningSlots == 1));

        var follower = await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, string.Join(' ', Enumerable.Repeat("Add a benchmark for the lexer.", 400)), system), 2) with { SharedPrefixLength = systemTurn });
        await leader;

        Assert.Equal(systemTurn, follower.Usage.CachedPromptTokens);
        var steps = backend.Steps.ToList();
        var leaderSequence = steps.First(s => s.Chunks.Length > 0).Chunks[0].Sequence;
        var leaderFirstToken = steps.FindIndex(s => s.Chunks.Any(c => c.Sequence == leaderSequence && c.Logits));
        Assert.Contains(steps.Take(leaderFirstToken), s => s.Restored is { } restored && restored != leaderSequence); // the follower was waiting beside it
        Assert.All(steps[leaderFirstToken].Chunks, c => Assert.True(c.Logits, $"{c.Tokens} tokens of sequence {c.Sequence} rode along with the leader's first token"));
    }

    [Fact]
    public async Task Host_cache_stays_within_its_budget_in_modelled_state_bytes()
    {
        // 151 MB of recurrent state per snapshot: a 400 MB budget holds two, so a third conversation evicts.
        const long budget = 400L << 20;
        await using var engine = await StartAsync(slots: 1, hostCacheBytes: budget);
        for (var i = 0; i < 4; i++)
        {
            await engine.RunAsync(Greedy(ChatPrompt(_vocabulary, $"Conversation number {i}.", system: $"System prompt {i}."), 4));
        }

        var status = engine.GetStatus();
        Assert.InRange(status.HostCacheBytes, 151L << 20, budget);
        Assert.True(status.HostCacheEvictions > 0, "nothing was evicted");
    }

    [Fact]
    public async Task More_requests_than_slots_queue_and_all_complete_with_their_usage()
    {
        await using var engine = await StartAsync(slots: 2);
        var runs = Enumerable.Range(0, 6)
            .Select(i => engine.RunAsync(Greedy(ChatPrompt(_vocabulary, $"Question {i}?", system: $"Team {i}."), 12)))
            .ToList();

        var results = await Task.WhenAll(runs);

        Assert.All(results, r => Assert.Equal(FinishReason.Length, r.Reason));
        Assert.All(results, r => Assert.Equal(12, r.Tokens.Count));
        Assert.Equal(6, engine.GetStatus().RequestsCompleted);
    }

    /// <summary>Starts a 20,000-token prompt (2 tokens to generate) and returns its run once it holds a slot.</summary>
    private static async Task<Task<CollectedGeneration>> StartLongPromptAsync(InferenceEngine engine)
    {
        var longPrompt = Enumerable.Range(0, 20_000).Select(i => 3 + (i % 250)).ToArray();
        var longRun = engine.RunAsync(Greedy(longPrompt, 2));
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(engine.GetStatus().RunningSlots == 1));
        return longRun;
    }

    [Fact]
    public async Task A_short_prompt_admitted_after_a_long_one_is_prefilled_first()
    {
        // 20,000 prompt tokens are ~20 modelled seconds of prefill (4 s at 5x); 200 tokens are ~0.2 s. In admission order
        // the short prompt's first token would wait for the whole long prefill; shortest first, it comes long before.
        await using var engine = await StartAsync(CostModelProfiles.Rtx3090Qwen36, slots: 2, speedup: 5);
        var longRun = await StartLongPromptAsync(engine);

        var shortRun = await engine.RunAsync(Greedy(Enumerable.Range(0, 200).Select(i => 7 + (i % 250)).ToArray(), 2));

        Assert.False(longRun.IsCompleted, "the long prompt finished before the short one: it was not overtaken");
        Assert.True(shortRun.Usage.TimeToFirstToken < TimeSpan.FromSeconds(2), $"the short prompt's first token took {shortRun.Usage.TimeToFirstToken}");
        Assert.Equal(2, (await longRun).Tokens.Count);
        Assert.Equal(2, shortRun.Tokens.Count);
    }

    [Fact]
    public async Task Status_reports_the_pool_cells_promised_to_running_requests_before_their_prefill_computes_them()
    {
        // A 20,000-token prompt (~4 s of prefill at 5x) is promised all its cells on admission, before the KV holds any:
        // that promise, not the cells in use, is what holds the next prompt back when they would not fit together.
        await using var engine = await StartAsync(CostModelProfiles.Rtx3090Qwen36, slots: 2, speedup: 5);
        var longRun = await StartLongPromptAsync(engine);

        var midway = engine.GetStatus();
        Assert.Equal(20_000, midway.ReservedKvTokens);
        Assert.True(midway.KvTokensUsed < 20_000, $"{midway.KvTokensUsed} cells in use while the prompt is prefilling");

        Assert.Equal(2, (await longRun).Tokens.Count);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(engine.GetStatus().ReservedKvTokens == 0));
    }

    [Theory]
    [InlineData(100, 300)]
    // The limit is modelled time: 1 s on the card is 200 ms at 5x, so 600 ms after its admission the long prompt is overdue,
    // as it would be on the card after 3 s (in real time it would still have 400 ms to go).
    [InlineData(1000, 600)]
    public async Task A_prompt_admitted_longer_than_the_overtake_limit_ago_is_overtaken_no_more(int limitMilliseconds, int waitMilliseconds)
    {
        await using var engine = await StartAsync(CostModelProfiles.Rtx3090Qwen36, slots: 2, speedup: 5, prefillOvertakeLimit: TimeSpan.FromMilliseconds(limitMilliseconds));
        var longRun = await StartLongPromptAsync(engine);
        await Task.Delay(TimeSpan.FromMilliseconds(waitMilliseconds));

        var shortRun = await engine.RunAsync(Greedy(Enumerable.Range(0, 200).Select(i => 7 + (i % 250)).ToArray(), 2));

        // The long prompt was overdue when the short one came: its prefill (~4 s here) went first.
        Assert.True(longRun.IsCompleted, $"the short prompt overtook an overdue long one (first token after {shortRun.Usage.TimeToFirstToken})");
        Assert.True(shortRun.Usage.TimeToFirstToken > TimeSpan.FromSeconds(1), $"the short prompt's first token took only {shortRun.Usage.TimeToFirstToken}");
    }

    [Fact]
    public async Task The_card_profile_spends_its_prefill_time_scaled_by_the_speedup()
    {
        // 4,000 prompt tokens at ~1,000 tok/s is ~4 modelled seconds; at 100x no less than 40 ms may pass before the first
        // token (a lower bound only: a loaded machine makes it slower, never faster).
        await using var engine = await StartAsync(CostModelProfiles.Rtx3090Qwen36, slots: 1, speedup: 100);
        var prompt = Enumerable.Range(0, 4000).Select(i => 3 + (i % 250)).ToArray();
        var clock = Stopwatch.StartNew();

        var result = await engine.RunAsync(Greedy(prompt, 2));

        Assert.Equal(2, result.Tokens.Count);
        Assert.True(result.Usage.TimeToFirstToken >= TimeSpan.FromMilliseconds(40), $"first token after {result.Usage.TimeToFirstToken}");
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(40));
    }

    [Fact]
    public void Step_cost_grows_with_prefill_tokens_depth_and_decode_batch()
    {
        var profile = CostModelProfiles.Find(CostModelProfiles.Rtx3090Qwen36)!;

        var shallow = profile.StepSeconds(0, 0, [(512, 0)]);
        var deep = profile.StepSeconds(0, 0, [(512, 64_000)]);
        var one = profile.StepSeconds(1, 1000, []);
        var four = profile.StepSeconds(4, 4000, []);
        var fewPromptTokens = profile.StepSeconds(0, 0, [(3, 16_000)]);

        Assert.InRange(shallow, 0.5, 0.53); // pp512 ~1,000 tok/s
        Assert.InRange(deep / shallow, 1.3, 1.5); // ~737 tok/s at 64k
        Assert.InRange(1 / one, 30, 36); // ~33 tok/s single stream
        Assert.InRange(four / one, 1.1, 1.3); // batched decode: the weights are read once per step
        Assert.InRange(fewPromptTokens / one, 0.99, 1.01); // so is a prompt's last few tokens' step: it costs a decode step
        Assert.Equal(0, CostModelProfiles.Find(CostModelProfiles.Instant)!.StepSeconds(8, 10_000, [(512, 0)]));
    }

    /// <summary>The cost model's backend, recording each decoded step's chunks and every state restored into a sequence.</summary>
    private sealed class RecordingBackend(CostModelBackend inner) : IComputeBackend
    {
        public ConcurrentQueue<Step> Steps { get; } = new();

        public string Architecture => inner.Architecture;

        public bool UsesStateSnapshots => inner.UsesStateSnapshots;

        public double TimeScale => inner.TimeScale;

        public IComputeContext CreateContext(EngineOptions options, ILogger logger) => new Context(inner.CreateContext(options, logger), Steps);

        /// <summary>A decoded batch's consecutive tokens per sequence (and whether the last wanted logits), or a restore.</summary>
        public sealed record Step(int? Restored, Chunk[] Chunks);

        public sealed record Chunk(int Sequence, int Tokens, bool Logits);

        private sealed class Context(IComputeContext context, ConcurrentQueue<Step> steps) : IComputeContext
        {
            public int ContextSize => context.ContextSize;

            public int ContextPerSequence => context.ContextPerSequence;

            public StateFootprint State => context.State;

            public ITokenBatch CreateBatch(int capacity) => new Batch(context.CreateBatch(capacity));

            public DecodeResult Decode(ITokenBatch batch)
            {
                var recorded = (Batch)batch;
                steps.Enqueue(new Step(null, [.. recorded.Chunks]));
                return context.Decode(recorded.Inner);
            }

            public int Sample(LlamaSampler sampler, int batchIndex, int generated) => context.Sample(sampler, batchIndex, generated);

            public bool TryRemoveTail(int sequence, int from) => context.TryRemoveTail(sequence, from);

            public void ClearSequence(int sequence) => context.ClearSequence(sequence);

            public long GetSequenceStateSize(int sequence) => context.GetSequenceStateSize(sequence);

            public SequenceState GetSequenceState(int sequence) => context.GetSequenceState(sequence);

            public bool TrySetSequenceState(int sequence, SequenceState state)
            {
                steps.Enqueue(new Step(sequence, []));
                return context.TrySetSequenceState(sequence, state);
            }

            public void Dispose() => context.Dispose();
        }

        private sealed class Batch(ITokenBatch inner) : ITokenBatch
        {
            public ITokenBatch Inner => inner;

            public List<Chunk> Chunks { get; } = [];

            public int Capacity => inner.Capacity;

            public int Count => inner.Count;

            public int Add(int token, int position, int sequence, bool wantLogits)
            {
                if (Chunks.Count > 0 && Chunks[^1] is { } last && last.Sequence == sequence)
                {
                    Chunks[^1] = last with { Tokens = last.Tokens + 1, Logits = wantLogits };
                }
                else
                {
                    Chunks.Add(new Chunk(sequence, 1, wantLogits));
                }

                return inner.Add(token, position, sequence, wantLogits);
            }

            public void Clear()
            {
                Chunks.Clear();
                inner.Clear();
            }
        }
    }
}
