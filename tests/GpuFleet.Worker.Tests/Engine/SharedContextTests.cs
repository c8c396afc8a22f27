using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Models;
using static GpuFleet.Worker.Tests.Engine.EngineTestKit;

namespace GpuFleet.Worker.Tests.Engine;

/// <summary>One KV pool shared by all slots (llama.cpp's unified KV cache).</summary>
[Collection(LlamaCollection.Name)]
public sealed class SharedContextTests(TestModels models)
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task One_long_prompt_and_several_short_ones_run_together_in_one_pool(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        // 4 slots in 1,024 cells: split per slot, the long prompt would not fit in 256.
        await using var engine = await StartAsync(model, slots: 4, contextSize: 1024);
        var a = model.Tokenize("a").Single();
        var longPrompt = Enumerable.Repeat(a, 700).ToArray();

        var runs = new[] { engine.RunAsync(Greedy(longPrompt, 8)) }
            .Concat(Enumerable.Range(0, 3).Select(i => engine.RunAsync(Greedy(ChatPrompt(model, $"Short question {i}."), 8))))
            .ToArray();
        var results = await Task.WhenAll(runs);

        Assert.Equal(1024, engine.ContextPerRequest);
        Assert.All(results, r => Assert.Equal(FinishReason.Length, r.Reason));
        Assert.All(results, r => Assert.Equal(8, r.Tokens.Count));
        Assert.Equal(1024, engine.GetStatus().ContextPerRequest);
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Idle_cached_prefixes_give_way_to_a_new_prompt_that_needs_their_cells(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        await using var engine = await StartAsync(model, slots: 4, contextSize: 1024);
        var filler = Enumerable.Range(0, 3).Select(i => Enumerable.Repeat(model.Tokenize(((char)('b' + i)).ToString()).Single(), 300).ToArray()).ToList();
        foreach (var prompt in filler)
        {
            Assert.Equal(FinishReason.Length, (await engine.RunAsync(Greedy(prompt, 4))).Reason);
        }

        Assert.True(engine.GetStatus().KvTokensUsed > 800, "three idle slots keep their prefixes");

        var big = Enumerable.Repeat(model.Tokenize("z").Single(), 900).ToArray();
        var result = await engine.RunAsync(Greedy(big, 4));

        Assert.Equal(FinishReason.Length, result.Reason);
        Assert.Equal(4, result.Tokens.Count);
        Assert.InRange(engine.GetStatus().KvTokensUsed, 900, 1024);
    }

    [Fact]
    public async Task When_running_requests_fill_the_pool_the_largest_ends_with_length_and_the_rest_go_on()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        await using var engine = await StartAsync(model, slots: 2, contextSize: 512);
        var first = Enumerable.Repeat(model.Tokenize("a").Single(), 200).ToArray();
        var second = Enumerable.Repeat(model.Tokenize("b").Single(), 150).ToArray();

        // Both fit when admitted (350 of 512 cells) but would need 200 + 150 + 2 x 400 together.
        var results = await Task.WhenAll(engine.RunAsync(Greedy(first, 400)), engine.RunAsync(Greedy(second, 400)));

        Assert.All(results, r => Assert.Equal(FinishReason.Length, r.Reason));
        Assert.True(results[0].Tokens.Count < 400, $"the larger request ended early at {results[0].Tokens.Count} tokens");
        Assert.True(results[0].Tokens.Count + results[1].Tokens.Count + 350 >= 512, "the pool was used to its end");
        Assert.True(results[1].Tokens.Count > results[0].Tokens.Count, "the smaller one went on after the larger one ended");
    }
}
