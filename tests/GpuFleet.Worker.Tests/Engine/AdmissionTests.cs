using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Models;
using static GpuFleet.Worker.Tests.Engine.EngineTestKit;

namespace GpuFleet.Worker.Tests.Engine;

[Collection(LlamaCollection.Name)]
public sealed class AdmissionTests(TestModels models)
{
    [Fact]
    public async Task Full_queue_is_refused_at_once_as_overloaded()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        await using var engine = await StartAsync(model, slots: 1, queue: 1, contextSize: 4096);
        using var cancel = new CancellationTokenSource();
        var running = engine.Submit(Greedy(ChatPrompt(model, "Long answer."), 4000), cancel.Token);
        var waiting = engine.Submit(Greedy(ChatPrompt(model, "Waiting."), 4), cancel.Token);

        var started = System.Diagnostics.Stopwatch.StartNew();
        var refused = engine.Submit(Greedy(ChatPrompt(model, "One too many."), 4));

        Assert.True(running.Accepted);
        Assert.True(waiting.Accepted);
        Assert.False(refused.Accepted);
        Assert.Equal(RejectionReason.Overloaded, refused.Rejection!.Reason);
        Assert.Contains("capacity", refused.Rejection.Message, StringComparison.Ordinal);
        Assert.True(started.ElapsedMilliseconds < 1000, "refusal must not wait");
        Assert.Equal(1, engine.GetStatus().RequestsRejected);

        await cancel.CancelAsync();
        await running.Stream!.Completion.WithTimeout();
        await waiting.Stream!.Completion.WithTimeout();

        // Capacity is released: a new request is accepted and served.
        var after = await engine.RunAsync(Greedy(ChatPrompt(model, "Now there is room."), 3));
        Assert.Equal(3, after.Tokens.Count);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Prompt_longer_than_the_slot_context_is_refused_before_any_work(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model, contextSize: 256);
        var tooLong = Enumerable.Repeat(model.Tokenize("a").Single(), 256).ToArray();
        var fits = tooLong[..255];

        var refused = engine.Submit(Greedy(tooLong, 4));
        var accepted = await engine.RunAsync(Greedy(fits, 4));

        Assert.Equal(RejectionReason.PromptTooLong, refused.Rejection?.Reason);
        Assert.Contains("256 tokens", refused.Rejection!.Message, StringComparison.Ordinal);
        Assert.Equal(0, engine.GetStatus().PromptTokensTotal - 255);
        // The prompt takes 255 of the 256 cells: the first generated token fills the last cell, and the
        // second is sampled from it but never needs a cell of its own, so generation ends there.
        Assert.Equal(FinishReason.Length, accepted.Reason);
        Assert.Equal(2, accepted.Tokens.Count);
    }

    [Fact]
    public async Task Invalid_requests_are_refused_with_every_problem_named()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        await using var engine = await StartAsync(model);
        var prompt = ChatPrompt(model, "Hi.");

        var empty = engine.Submit(Greedy([], 4));
        var badToken = engine.Submit(Greedy([1, 2, model.VocabularySize + 5], 4));
        var badParameters = engine.Submit(new GenerationRequest
        {
            PromptTokens = prompt,
            MaxTokens = 0,
            Sampling = new SamplingParameters { Temperature = -1, TopP = 1.5f },
        });
        var emptyStop = engine.Submit(Greedy(prompt) with { StopSequences = [""] });

        Assert.Equal(RejectionReason.InvalidRequest, empty.Rejection?.Reason);
        Assert.Contains("outside the vocabulary", badToken.Rejection?.Message, StringComparison.Ordinal);
        var message = badParameters.Rejection?.Message;
        Assert.Contains("temperature", message, StringComparison.Ordinal);
        Assert.Contains("top_p", message, StringComparison.Ordinal);
        Assert.Contains("max_tokens", message, StringComparison.Ordinal);
        Assert.Equal(RejectionReason.InvalidRequest, emptyStop.Rejection?.Reason);
        Assert.Equal(0, engine.GetStatus().PromptTokensTotal);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Cancelling_a_request_frees_its_slot(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model, slots: 1, contextSize: 4096);
        using var cancel = new CancellationTokenSource();
        var admission = engine.Submit(Greedy(ChatPrompt(model, "Go on forever."), 4000), cancel.Token);

        var tokensBeforeCancel = 0;
        await foreach (var item in admission.Stream!.ReadAllAsync(TestTimeouts.Token()))
        {
            if (item is TokenEvent && ++tokensBeforeCancel == 5)
            {
                await cancel.CancelAsync();
                break;
            }
        }

        var completion = await admission.Stream.Completion.WithTimeout();
        Assert.Equal(FinishReason.Cancelled, completion.Reason);
        Assert.InRange(completion.Usage.CompletionTokens, 5, 100);

        // The only slot is free again: the next request runs right away.
        var next = await engine.RunAsync(Greedy(ChatPrompt(model, "Next."), 3));
        Assert.Equal(3, next.Tokens.Count);
        Assert.Equal(1, engine.GetStatus().FreeSlots);
    }

    [Fact]
    public async Task Cancelling_a_queued_request_completes_it_without_work()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        await using var engine = await StartAsync(model, slots: 1, queue: 4, contextSize: 4096);
        using var stopFirst = new CancellationTokenSource();
        using var cancelQueued = new CancellationTokenSource();
        var first = engine.Submit(Greedy(ChatPrompt(model, "Busy."), 4000), stopFirst.Token);
        var queued = engine.Submit(Greedy(ChatPrompt(model, "Waiting."), 4), cancelQueued.Token);

        await cancelQueued.CancelAsync();
        var completion = await queued.Stream!.Completion.WithTimeout();

        Assert.Equal(FinishReason.Cancelled, completion.Reason);
        Assert.Equal(0, completion.Usage.CompletionTokens);
        Assert.False(first.Stream!.Completion.IsCompleted);
        await stopFirst.CancelAsync();
        await first.Stream.Completion.WithTimeout();
    }

    [Fact]
    public async Task A_failed_decode_fails_only_the_requests_in_that_batch_and_the_engine_goes_on()
    {
        var model = models.Get(DemoArchitecture.Qwen35);
        await using var engine = await StartAsync(model, slots: 2);
        var fail = 0;
        engine.InjectDecodeFailure = () => Interlocked.Exchange(ref fail, 0) == 1;
        using var cancel = new CancellationTokenSource();
        var a = engine.Submit(Greedy(ChatPrompt(model, "First."), 4000), cancel.Token);
        var b = engine.Submit(Greedy(ChatPrompt(model, "Second."), 4000), cancel.Token);
        await WaitForTokensAsync(a.Stream!, 3);

        Interlocked.Exchange(ref fail, 1);
        var failedA = await a.Stream!.Completion.WithTimeout();
        var failedB = await b.Stream!.Completion.WithTimeout();

        Assert.Equal(FinishReason.Error, failedA.Reason);
        Assert.Equal(FinishReason.Error, failedB.Reason);
        Assert.Contains("failed to decode", failedA.Error, StringComparison.Ordinal);

        // The engine goes on, and the failed slots' caches were dropped: fresh results match a cold engine.
        var prompt = ChatPrompt(model, "After the failure.");
        var after = await engine.RunAsync(Greedy(prompt, 8));
        await using var cold = await StartAsync(model, hostCacheBytes: 0);
        Assert.Equal((await cold.RunAsync(Greedy(prompt, 8))).Tokens, after.Tokens);
        Assert.Equal(2, engine.GetStatus().RequestsFailed);
    }

    private static async Task WaitForTokensAsync(GenerationStream stream, int count)
    {
        var seen = 0;
        await foreach (var item in stream.ReadAllAsync(TestTimeouts.Token()))
        {
            if (item is TokenEvent && ++seen == count)
            {
                return;
            }
        }
    }
}
