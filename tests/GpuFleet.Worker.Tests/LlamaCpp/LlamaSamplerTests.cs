using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.LlamaCpp.Native;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.LlamaCpp;

/// <summary>
/// The sampler chain over fixed logits, so that each parameter's effect is exact: two leading tokens
/// (A slightly above B) and a flat rest.
/// </summary>
[Collection(LlamaCollection.Name)]
public sealed class LlamaSamplerTests(TestModels models)
{
    private const int A = 5;
    private const int B = 6;

    [Theory]
    [InlineData(0, new[] { A, A, A, A, A, A })] // a window of 0 turns the penalties off
    [InlineData(1, new[] { A, B, A, B, A, B })] // only the previous token is penalised
    [InlineData(64, new[] { A, B, A, A, A, A })] // both penalised once (presence), A leads again
    public void Presence_penalty_covers_exactly_the_last_n_tokens(int lastN, int[] expected)
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        using var sampler = Greedy(model, presencePenalty: 1.0f, lastN: lastN);

        Assert.Equal(expected, Draw(model, sampler, expected.Length));
    }

    [Theory]
    [InlineData(1.1f, 0f, new[] { A, B, A, A, A, A })] // A/1.1 < B once; then both are divided, and A leads
    [InlineData(1.0f, 0.08f, new[] { A, A, B, A, B, A })] // each use costs 0.08: the lead changes every 0.1
    public void Repetition_and_frequency_penalties_follow_use(float repetition, float frequency, int[] expected)
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        using var sampler = LlamaSampler.Create(model, temperature: 0, topP: 1, topK: 0, minP: 0,
            repetitionPenalty: repetition, presencePenalty: 0, frequencyPenalty: frequency, penaltyLastN: 64, seed: null);

        Assert.Equal(expected, Draw(model, sampler, expected.Length));
    }

    [Fact]
    public void A_seed_repeats_its_draws_and_another_seed_does_not()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        var flat = new float[model.VocabularySize]; // every token equally likely: the draw is all seed

        int[] Draws(uint seed)
        {
            using var sampler = LlamaSampler.Create(model, temperature: 1, topP: 1, topK: 0, minP: 0,
                repetitionPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, penaltyLastN: 64, seed: seed);
            var scratch = new LlamaTokenData[flat.Length];
            return [.. Enumerable.Range(0, 16).Select(_ => sampler.Sample(flat, scratch))];
        }

        Assert.Equal(Draws(7), Draws(7));
        Assert.NotEqual(Draws(7), Draws(8));
    }

    [Fact]
    public void A_chain_that_allows_no_token_throws_instead_of_accepting_one()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        using var sampler = Greedy(model, presencePenalty: 0, lastN: 64);
        var forbidden = Enumerable.Repeat(float.NegativeInfinity, model.VocabularySize).ToArray();

        Assert.Throws<LlamaNativeException>(() => sampler.Sample(forbidden, new LlamaTokenData[forbidden.Length]));
    }

    [Fact]
    public void Plain_greedy_picks_what_the_native_greedy_chain_picks()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        using var fast = Greedy(model, presencePenalty: 0, lastN: 64); // the greedy sampler alone: read directly
        using var chain = Greedy(model, presencePenalty: 1.0f, lastN: 0); // a penalty that does nothing: the native chain
        var random = new Random(11);
        var scratch = new LlamaTokenData[model.VocabularySize];
        for (var row = 0; row < 200; row++)
        {
            // Few distinct values, so most rows have ties for the highest (the first must win); the highest sits anywhere,
            // also in the last tokens that do not fill a vector.
            var logits = Enumerable.Range(0, model.VocabularySize).Select(_ => (float)random.Next(-4, row % 7)).ToArray();
            if (row % 5 == 0)
            {
                logits[^(1 + (row % 3))] = 100f;
            }

            Assert.Equal(chain.Sample(logits, scratch), fast.Sample(logits, scratch));
        }
    }

    [Fact]
    public void Plain_greedy_counts_minus_zero_as_zero_and_refuses_a_row_of_minus_infinity()
    {
        var logits = Enumerable.Repeat(float.NegativeInfinity, 1000).ToArray();
        Assert.Throws<LlamaNativeException>(() => LlamaSampler.FirstHighest(logits));

        logits[700] = -0f;
        logits[900] = 0f;
        Assert.Equal(700, LlamaSampler.FirstHighest(logits));
        logits[999] = float.NaN;
        Assert.Throws<LlamaNativeException>(() => LlamaSampler.FirstHighest(logits));
    }

    private static LlamaSampler Greedy(LlamaModel model, float presencePenalty, int lastN) =>
        LlamaSampler.Create(model, temperature: 0, topP: 1, topK: 0, minP: 0,
            repetitionPenalty: 1.0f, presencePenalty: presencePenalty, frequencyPenalty: 0, penaltyLastN: lastN, seed: null);

    private static int[] Draw(LlamaModel model, LlamaSampler sampler, int count)
    {
        var logits = new float[model.VocabularySize];
        logits[A] = 3.0f;
        logits[B] = 2.9f;
        var scratch = new LlamaTokenData[logits.Length];
        return [.. Enumerable.Range(0, count).Select(_ => sampler.Sample(logits, scratch))];
    }
}
