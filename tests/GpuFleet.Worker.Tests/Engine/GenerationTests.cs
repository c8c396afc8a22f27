using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using static GpuFleet.Worker.Tests.Engine.EngineTestKit;

namespace GpuFleet.Worker.Tests.Engine;

[Collection(LlamaCollection.Name)]
public sealed class GenerationTests(TestModels models)
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Generates_max_tokens_and_reports_usage(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model);
        var prompt = ChatPrompt(model, "Name three colours.");

        var result = await engine.RunAsync(Greedy(prompt, maxTokens: 12));

        Assert.Equal(FinishReason.Length, result.Reason);
        Assert.Equal(12, result.Tokens.Count);
        Assert.Equal(prompt.Length, result.Usage.PromptTokens);
        Assert.Equal(12, result.Usage.CompletionTokens);
        Assert.True(result.Usage.TimeToFirstToken > TimeSpan.Zero);
        Assert.True(result.Usage.TotalTime >= result.Usage.TimeToFirstToken);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Greedy_generation_is_deterministic(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var a = await StartAsync(model, hostCacheBytes: 0);
        await using var b = await StartAsync(model, hostCacheBytes: 0);
        var prompt = ChatPrompt(model, "Count to five.");

        var first = await a.RunAsync(Greedy(prompt, 24));
        var second = await b.RunAsync(Greedy(prompt, 24));

        Assert.Equal(first.Tokens, second.Tokens);
        Assert.Equal(first.Text, second.Text);
    }

    [Fact]
    public async Task End_of_generation_token_stops_unless_ignored()
    {
        var model = models.Get(GpuFleet.Worker.Models.DemoArchitecture.Qwen3);
        // Per-slot KV and no reuse: the two runs compared below must compute the prompt identically (in the shared pool
        // other slots' cached cells change the attention's rounding, which a temperature-2 draw can notice).
        await using var engine = await StartAsync(model, prefixReuse: false, unifiedKv: false);
        var prompt = ChatPrompt(model, "Say goodbye.");
        GenerationRequest Hot(uint seed, bool ignore) => new()
        {
            PromptTokens = prompt,
            MaxTokens = 300,
            Sampling = new SamplingParameters { Temperature = 2.0f, Seed = seed },
            IgnoreEndOfGeneration = ignore,
        };

        // A random model reaches <|im_end|> or <|endoftext|> now and then: find a seed for which it does.
        CollectedGeneration? stopped = null;
        uint seed = 0;
        for (seed = 1; seed <= 40 && stopped is null; seed++)
        {
            var attempt = await engine.RunAsync(Hot(seed, ignore: false));
            stopped = attempt.Reason == FinishReason.Stop ? attempt : null;
        }

        Assert.NotNull(stopped);
        // The end-of-generation token itself is not streamed.
        Assert.DoesNotContain(stopped.Tokens, model.IsEndOfGeneration);
        Assert.Equal(stopped.Tokens.Count + 1, stopped.Usage.CompletionTokens);

        var ignored = await engine.RunAsync(Hot(seed - 1, ignore: true));
        Assert.Equal(FinishReason.Length, ignored.Reason);
        Assert.Equal(300, ignored.Tokens.Count);
        Assert.Equal(stopped.Tokens, ignored.Tokens.Take(stopped.Tokens.Count));
        Assert.True(model.IsEndOfGeneration(ignored.Tokens[stopped.Tokens.Count]));
    }

    [Fact]
    public async Task Stop_sequence_ends_generation_and_is_not_returned()
    {
        var model = models.Get(GpuFleet.Worker.Models.DemoArchitecture.Qwen35);
        await using var engine = await StartAsync(model);
        var prompt = ChatPrompt(model, "Tell me a story.");
        var full = await engine.RunAsync(Greedy(prompt, 40));
        Assert.True(full.Text.Length > 12, "the reference output has text");

        // A stop sequence taken from the middle of the reference output.
        var stop = full.Text.Substring(full.Text.Length / 2, 3);
        var expected = full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)];

        var stopped = await engine.RunAsync(Greedy(prompt, 40) with { StopSequences = [stop, "never-appears-xyz"] });

        Assert.Equal(FinishReason.Stop, stopped.Reason);
        Assert.Equal(expected, stopped.Text);
        Assert.True(stopped.Tokens.Count < full.Tokens.Count);
    }

    [Fact]
    public async Task Seeded_sampling_repeats_and_different_seeds_differ()
    {
        var model = models.Get(GpuFleet.Worker.Models.DemoArchitecture.Qwen3);
        // Without prefix reuse every run computes the prompt in the same batch shape (see EngineOptions.PrefixReuse).
        await using var engine = await StartAsync(model, prefixReuse: false);
        var prompt = ChatPrompt(model, "Pick a random word.");
        GenerationRequest Request(uint seed) => new()
        {
            PromptTokens = prompt,
            MaxTokens = 32,
            IgnoreEndOfGeneration = true,
            Sampling = new SamplingParameters { Temperature = 1.0f, TopK = 40, TopP = 0.95f, MinP = 0.01f, RepetitionPenalty = 1.1f, PresencePenalty = 0.2f, FrequencyPenalty = 0.2f, Seed = seed },
        };

        var a = await engine.RunAsync(Request(11));
        var b = await engine.RunAsync(Request(11));
        var c = await engine.RunAsync(Request(12));

        Assert.Equal(a.Tokens, b.Tokens);
        Assert.NotEqual(a.Tokens, c.Tokens);
    }

    [Fact]
    public async Task Stopping_the_engine_lets_running_requests_finish_and_refuses_new_ones()
    {
        var model = models.Get(GpuFleet.Worker.Models.DemoArchitecture.Qwen3);
        var engine = await StartAsync(model, slots: 2);
        var running = engine.Submit(Greedy(ChatPrompt(model, "Keep talking."), 64));

        var stop = engine.StopAsync(TestTimeouts.Token());
        var refused = engine.Submit(Greedy(ChatPrompt(model, "Too late."), 4));
        var result = await running.Stream!.CollectAsync();
        await stop.WithTimeout();
        await engine.DisposeAsync();

        Assert.Equal(FinishReason.Length, result.Reason);
        Assert.Equal(64, result.Tokens.Count);
        Assert.Equal(RejectionReason.ShuttingDown, refused.Rejection?.Reason);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task A_grammar_constrains_the_output_and_ends_it(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model);
        const string Grammar = """
            root ::= "<tool_call>\n<function=get_weather>\n<parameter=city>\n" city "\n</parameter>\n</function>\n</tool_call>"
            city ::= [a-z]{3,8}
            """;

        var result = await engine.RunAsync(new GenerationRequest
        {
            PromptTokens = ChatPrompt(model, "Weather?"),
            MaxTokens = 200,
            Sampling = new SamplingParameters { Temperature = 1.0f, Seed = 5 },
            Grammar = Grammar,
        });

        Assert.True(result.Reason == FinishReason.Stop, $"{result.Reason} after {result.Tokens.Count} tokens: {result.Text}");
        Assert.Matches("^<tool_call>\n<function=get_weather>\n<parameter=city>\n[a-z]{3,8}\n</parameter>\n</function>\n</tool_call>$", result.Text);
    }

    [Fact]
    public async Task An_invalid_grammar_is_refused_before_any_work()
    {
        var model = models.Get(GpuFleet.Worker.Models.DemoArchitecture.Qwen3);
        await using var engine = await StartAsync(model);

        var admission = engine.Submit(Greedy(ChatPrompt(model, "Hi")) with { Grammar = "root ::= (unclosed" });

        Assert.Equal(RejectionReason.InvalidRequest, admission.Rejection?.Reason);
        Assert.Contains("grammar", admission.Rejection!.Message, StringComparison.Ordinal);
    }
}

