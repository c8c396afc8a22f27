using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Engine.Simulated;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;
using static GpuFleet.Worker.Tests.Engine.EngineTestKit;

namespace GpuFleet.Worker.Tests.Engine;

/// <summary>The zero-cost engine on a vocabulary-only model: real admission and usage, fixed answers, no decoding.</summary>
[Collection(LlamaCollection.Name)]
public sealed class SimulatedEngineTests(TestModels models) : IDisposable
{
    // No weights: nothing can be decoded with this model, so every answer below comes without decoding.
    private readonly LlamaModel _vocabulary = LlamaModel.Load(models.PathOf(DemoArchitecture.Qwen35), vocabularyOnly: true);

    public void Dispose() => _vocabulary.Dispose();

    [Fact]
    public async Task Answers_are_sixteen_fixed_tokens_ending_as_stop_with_real_prompt_usage()
    {
        await using var engine = Start();
        var prompt = ChatPrompt(_vocabulary, "Hello there");

        var first = await engine.RunAsync(Greedy(prompt, maxTokens: 256) with { IgnoreEndOfGeneration = false });
        var second = await engine.RunAsync(new GenerationRequest { PromptTokens = ChatPrompt(_vocabulary, "Something else entirely") });

        Assert.Equal(FinishReason.Stop, first.Reason);
        Assert.Equal(16, first.Tokens.Count);
        Assert.Equal(new GenerationUsage(prompt.Length, 0, 16, first.Usage.QueueTime, first.Usage.TimeToFirstToken, first.Usage.TotalTime), first.Usage);
        Assert.StartsWith(first.Text, SimulatedEngine.ReplyText, StringComparison.Ordinal);
        Assert.NotEmpty(first.Text);
        Assert.Equal(_vocabulary.Detokenize([.. first.Tokens], renderSpecial: false), first.Text);
        Assert.Equal(first.Tokens, second.Tokens);
        Assert.Equal(first.Text, second.Text);
        var status = engine.GetStatus();
        Assert.Equal(prompt.Length + ChatPrompt(_vocabulary, "Something else entirely").Length, status.PromptTokensTotal);
        Assert.Equal(32, status.GeneratedTokensTotal);
        Assert.Equal(2, status.RequestsCompleted);
    }

    [Fact]
    public async Task Max_tokens_ignore_eos_and_the_context_end_set_the_length()
    {
        await using var engine = Start(contextSize: 64, reply: new SimulatedReply { Tokens = 8 });
        var prompt = ChatPrompt(_vocabulary, "Hi", system: "s");

        var short3 = await engine.RunAsync(new GenerationRequest { PromptTokens = prompt, MaxTokens = 3 });
        var exact = await engine.RunAsync(new GenerationRequest { PromptTokens = prompt, MaxTokens = 8 });
        var longer = await engine.RunAsync(new GenerationRequest { PromptTokens = prompt, MaxTokens = 9 });
        var ignoreEos = await engine.RunAsync(new GenerationRequest { PromptTokens = prompt, MaxTokens = 20, IgnoreEndOfGeneration = true });
        var contextEnd = await engine.RunAsync(new GenerationRequest { PromptTokens = prompt, MaxTokens = 1000, IgnoreEndOfGeneration = true });

        Assert.Equal((3, FinishReason.Length), (short3.Tokens.Count, short3.Reason));
        Assert.Equal((8, FinishReason.Length), (exact.Tokens.Count, exact.Reason));
        Assert.Equal((8, FinishReason.Stop), (longer.Tokens.Count, longer.Reason));
        Assert.Equal((20, FinishReason.Length), (ignoreEos.Tokens.Count, ignoreEos.Reason));
        // Like the real engine: prompt + generated fill the slot's 64 cells, plus the last sampled token.
        Assert.Equal((64 - prompt.Length + 1, FinishReason.Length), (contextEnd.Tokens.Count, contextEnd.Reason));
    }

    [Fact]
    public async Task Tokens_stream_one_event_each_and_a_stop_sequence_ends_the_answer_before_it()
    {
        await using var engine = Start();
        var prompt = ChatPrompt(_vocabulary, "Hello");
        var admission = engine.Submit(new GenerationRequest { PromptTokens = prompt });
        var events = new List<GenerationEvent>();
        await foreach (var e in admission.Stream!.ReadAllAsync(TestTimeouts.Token()))
        {
            events.Add(e);
        }

        var stopped = await engine.RunAsync(new GenerationRequest { PromptTokens = prompt, StopSequences = ["answer"] });

        Assert.Equal(16, events.OfType<TokenEvent>().Count());
        Assert.IsType<CompletionEvent>(events[^1]);
        Assert.Single(events.OfType<CompletionEvent>());
        Assert.Equal("This ", stopped.Text);
        Assert.Equal(FinishReason.Stop, stopped.Reason);
        Assert.True(stopped.Tokens.Count < 16);
    }

    [Fact]
    public async Task A_prompt_that_opens_a_think_block_gets_it_closed_first()
    {
        await using var engine = Start();
        var thinking = _vocabulary.Tokenize("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n");

        var answer = await engine.RunAsync(new GenerationRequest { PromptTokens = thinking, MaxTokens = 100 });

        Assert.StartsWith("</think>\n\nThis answer", answer.Text, StringComparison.Ordinal);
        Assert.Equal(16, answer.Usage.CompletionTokens);
    }

    [Fact]
    public async Task Slots_and_queue_bound_admission_and_cancellation_frees_them()
    {
        // An hour per token: requests hold their slot until cancelled, deterministically.
        await using var engine = Start(slots: 1, queue: 1, reply: new SimulatedReply { TokenDelay = TimeSpan.FromHours(1) });
        var prompt = ChatPrompt(_vocabulary, "Hold the slot");
        using var cancelRunning = new CancellationTokenSource();
        using var cancelWaiting = new CancellationTokenSource();

        var running = engine.Submit(new GenerationRequest { PromptTokens = prompt }, cancelRunning.Token);
        var waiting = engine.Submit(new GenerationRequest { PromptTokens = prompt }, cancelWaiting.Token);
        var refused = engine.Submit(new GenerationRequest { PromptTokens = prompt });
        var busy = engine.GetStatus();

        Assert.True(running.Accepted);
        Assert.True(waiting.Accepted);
        Assert.Equal(RejectionReason.Overloaded, refused.Rejection?.Reason);
        Assert.Contains("capacity", refused.Rejection!.Message, StringComparison.Ordinal);
        Assert.Equal((1, 0, 1, 1, 1L), (busy.RunningSlots, busy.FreeSlots, busy.QueueDepth, busy.QueueCapacity, busy.RequestsRejected));

        await cancelWaiting.CancelAsync();
        var waited = await waiting.Stream!.Completion.WithTimeout();
        await cancelRunning.CancelAsync();
        var ran = await running.Stream!.Completion.WithTimeout();

        Assert.Equal((FinishReason.Cancelled, 0), (waited.Reason, waited.Usage.CompletionTokens));
        Assert.Equal((FinishReason.Cancelled, 0), (ran.Reason, ran.Usage.CompletionTokens));
        var idle = engine.GetStatus();
        Assert.Equal((0, 1, 0), (idle.RunningSlots, idle.FreeSlots, idle.QueueDepth));
        Assert.True(engine.Submit(new GenerationRequest { PromptTokens = prompt }).Accepted);
    }

    [Fact]
    public async Task A_waiting_request_runs_when_the_slot_frees_and_an_already_cancelled_one_ends_without_tokens()
    {
        await using var engine = Start(slots: 1, queue: 4, reply: new SimulatedReply { Tokens = 3, TokenDelay = TimeSpan.FromMilliseconds(20) });
        var prompt = ChatPrompt(_vocabulary, "Queue");

        var first = engine.Submit(new GenerationRequest { PromptTokens = prompt });
        var second = engine.Submit(new GenerationRequest { PromptTokens = prompt });
        var cancelled = engine.Submit(new GenerationRequest { PromptTokens = prompt }, new CancellationToken(canceled: true));

        var a = await first.Stream!.CollectAsync();
        var b = await second.Stream!.CollectAsync();
        var c = await cancelled.Stream!.CollectAsync();

        Assert.Equal((3, FinishReason.Stop), (a.Tokens.Count, a.Reason));
        Assert.Equal((3, FinishReason.Stop), (b.Tokens.Count, b.Reason));
        Assert.True(b.Usage.QueueTime >= TimeSpan.FromMilliseconds(40), $"queued {b.Usage.QueueTime}");
        Assert.Equal((0, FinishReason.Cancelled), (c.Tokens.Count, c.Reason));
    }

    [Fact]
    public async Task Stop_lets_accepted_requests_finish_and_refuses_new_ones()
    {
        var engine = Start(slots: 1, queue: 1, reply: new SimulatedReply { Tokens = 3, TokenDelay = TimeSpan.FromMilliseconds(10) });
        var prompt = ChatPrompt(_vocabulary, "Finish me");
        var running = engine.Submit(new GenerationRequest { PromptTokens = prompt });
        var waiting = engine.Submit(new GenerationRequest { PromptTokens = prompt });

        await engine.StopAsync().WithTimeout();

        Assert.Equal(3, (await running.Stream!.Completion).Usage.CompletionTokens);
        Assert.Equal(3, (await waiting.Stream!.Completion).Usage.CompletionTokens);
        Assert.Equal(RejectionReason.ShuttingDown, engine.Submit(new GenerationRequest { PromptTokens = prompt }).Rejection?.Reason);
        Assert.True(engine.GetStatus().Stopping);
        await engine.DisposeAsync();
    }

    [Fact]
    public async Task Stop_with_a_cancelled_token_interrupts_what_still_runs()
    {
        var engine = Start(slots: 1, queue: 1, reply: new SimulatedReply { TokenDelay = TimeSpan.FromHours(1) });
        var prompt = ChatPrompt(_vocabulary, "Interrupt me");
        var running = engine.Submit(new GenerationRequest { PromptTokens = prompt });
        var waiting = engine.Submit(new GenerationRequest { PromptTokens = prompt });

        await engine.StopAsync(new CancellationToken(canceled: true)).WithTimeout();

        foreach (var stream in new[] { running.Stream!, waiting.Stream! })
        {
            var done = await stream.Completion;
            Assert.Equal(FinishReason.Interrupted, done.Reason);
            Assert.Contains("stopped", done.Error, StringComparison.Ordinal);
        }

        await engine.DisposeAsync();
    }

    [Fact]
    public async Task Requests_are_checked_like_the_real_engine_before_any_work()
    {
        await using var engine = Start(contextSize: 64);
        var longPrompt = Enumerable.Repeat(_vocabulary.Tokenize("a").Single(), 64).ToArray();

        var tooLong = engine.Submit(new GenerationRequest { PromptTokens = longPrompt });
        var empty = engine.Submit(new GenerationRequest { PromptTokens = [] });
        var outside = engine.Submit(new GenerationRequest { PromptTokens = [_vocabulary.VocabularySize] });
        var badGrammar = engine.Submit(new GenerationRequest { PromptTokens = longPrompt[..10], Grammar = "root ::= (" });
        var goodGrammar = engine.Submit(new GenerationRequest { PromptTokens = longPrompt[..10], Grammar = "root ::= \"x\"" });

        Assert.Equal(RejectionReason.PromptTooLong, tooLong.Rejection?.Reason);
        Assert.Contains("64 tokens", tooLong.Rejection!.Message, StringComparison.Ordinal);
        Assert.Equal(RejectionReason.InvalidRequest, empty.Rejection?.Reason);
        Assert.Equal(RejectionReason.InvalidRequest, outside.Rejection?.Reason);
        Assert.Equal(RejectionReason.InvalidRequest, badGrammar.Rejection?.Reason);
        Assert.True(goodGrammar.Accepted);
        Assert.Equal(4, engine.GetStatus().RequestsRejected);
    }

    [Fact]
    public async Task Nothing_is_decoded_the_model_has_no_weights_and_rates_and_memory_stay_zero()
    {
        await using var engine = Start();
        for (var i = 0; i < 20; i++)
        {
            await engine.RunAsync(new GenerationRequest { PromptTokens = ChatPrompt(_vocabulary, $"Request {i}") });
        }

        var status = engine.GetStatus();

        Assert.True(engine.Model.VocabularyOnly);
        Assert.Equal(320, status.GeneratedTokensTotal);
        Assert.Equal((0d, 0d), (status.PrefillTokensPerSecond, status.DecodeTokensPerSecond));
        Assert.Equal((0L, 0L, 0L, 0L), (status.KvTokensUsed, status.KvTokensTotal, status.KvBytesUsed, status.KvBytesTotal));
        Assert.Equal((0, 0L), (status.HostCacheEntries, status.ReusedPromptTokensTotal));
    }

    private SimulatedEngine Start(int slots = 4, int queue = 16, int contextSize = 1024, SimulatedReply? reply = null) =>
        SimulatedEngine.Start(_vocabulary, new EngineOptions { Slots = slots, QueueCapacity = queue, ContextSize = contextSize }, reply);
}
