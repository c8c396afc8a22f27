using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using static GpuFleet.Worker.Tests.Engine.EngineTestKit;

namespace GpuFleet.Worker.Tests.Engine;

[Collection(LlamaCollection.Name)]
public sealed class ConcurrencyTests(TestModels models)
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public async Task Sixteen_concurrent_seeded_requests_match_the_same_requests_run_one_at_a_time(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        var requests = Enumerable.Range(0, 16).Select(i => new GenerationRequest
        {
            PromptTokens = ChatPrompt(model, $"Request number {i}: describe item {i * 7 % 5}."),
            MaxTokens = 10 + (i % 4 * 5),
            IgnoreEndOfGeneration = true,
            // llama.cpp's CPU kernels are not bit-identical between a 1-row and an 8-row decode: logits
            // differ in the last bits, so a seeded draw that lands exactly on a probability boundary can
            // flip (measured: 1 of ~320 draws with top-k 50 / top-p 0.9). A short top-k list leaves few
            // boundaries, which keeps this check exact while still sampling with a seed.
            Sampling = i % 2 == 0
                ? new SamplingParameters { Temperature = 0.8f, TopK = 8, TopP = 0.95f, Seed = (uint)(100 + i) }
                : SamplingParameters.Greedy,
        }).ToList();

        // Per-slot KV (1,024 cells each, as the sequential run has): in one shared pool, attention also sums over the
        // other sequences' masked cells, and that different rounding can flip a near-tie greedy token.
        List<CollectedGeneration> sequential = [];
        await using (var alone = await StartAsync(model, slots: 1, contextSize: 1024, prefixReuse: false, unifiedKv: false))
        {
            foreach (var request in requests)
            {
                sequential.Add(await alone.RunAsync(request));
            }
        }

        await using var engine = await StartAsync(model, slots: 8, queue: 16, contextSize: 8 * 1024, prefixReuse: false, unifiedKv: false);
        var concurrent = await Task.WhenAll(requests.Select(r => engine.RunAsync(r)));

        var mismatched = Enumerable.Range(0, 16).Where(i => !sequential[i].Tokens.SequenceEqual(concurrent[i].Tokens)).ToList();
        Assert.True(mismatched.Count == 0, "mismatched: " + string.Join(",", mismatched.Select(i => $"{i}@{sequential[i].Tokens.Zip(concurrent[i].Tokens).TakeWhile(p => p.First == p.Second).Count()}")));
        for (var i = 0; i < requests.Count; i++)
        {
            Assert.Equal(sequential[i].Tokens, concurrent[i].Tokens);
            Assert.Equal(requests[i].MaxTokens, concurrent[i].Tokens.Count);
        }

        var status = engine.GetStatus();
        Assert.Equal(16, status.RequestsCompleted);
        Assert.Equal(0, status.RunningSlots);
        Assert.Equal(8, status.FreeSlots);
        Assert.Equal(0, status.QueueDepth);
    }

    [Fact]
    public async Task A_long_prompt_is_prefilled_in_chunks_while_other_streams_keep_decoding()
    {
        var model = models.Get(GpuFleet.Worker.Models.DemoArchitecture.Qwen3);
        // A 64-token batch: the ~700-token prompt needs 11 or more steps of prefill, and each of those
        // steps also carries the next token of the short request.
        await using var engine = await StartAsync(model, slots: 2, contextSize: 2048, batchSize: 64);
        var longPrompt = ChatPrompt(model, string.Concat(Enumerable.Repeat("a long paragraph of context ", 25)));
        Assert.True(longPrompt.Length > 640, $"{longPrompt.Length} tokens");
        var shortRequest = engine.Submit(Greedy(ChatPrompt(model, "Short."), 40));
        var longRequest = engine.Submit(Greedy(longPrompt, 4));

        // Steps are the scheduler's own clock, so the check does not depend on how fast the readers run.
        async Task<List<long>> TokenSteps(GenerationStream stream)
        {
            var steps = new List<long>();
            await foreach (var item in stream.ReadAllAsync(TestTimeouts.Token()))
            {
                if (item is TokenEvent token)
                {
                    steps.Add(token.Step);
                }
            }

            return steps;
        }

        var shortSteps = TokenSteps(shortRequest.Stream!);
        var longSteps = TokenSteps(longRequest.Stream!);
        var longFirst = (await longSteps)[0];

        var shortTokensDuringLongPrefill = (await shortSteps).Count(step => step < longFirst);
        Assert.True(shortTokensDuringLongPrefill >= 8, $"{shortTokensDuringLongPrefill} short tokens before the long prompt's first token");
    }
}
