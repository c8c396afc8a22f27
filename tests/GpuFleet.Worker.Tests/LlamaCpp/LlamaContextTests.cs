using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.LlamaCpp;

/// <summary>A context's own CPU threads: attached at creation, used by prompt batches and single-token decodes alike.</summary>
[Collection(LlamaCollection.Name)]
public sealed class LlamaContextTests(TestModels models)
{
    [Theory]
    [InlineData(2, 2)] // one pool for both
    [InlineData(1, 2)] // a batch pool and a separate decode pool
    public void A_context_decodes_on_its_own_thread_pools(int threads, int batchThreads)
    {
        var model = models.Get(DemoArchitecture.Qwen35);
        var settings = new LlamaContextSettings { Sequences = 1, ContextSize = 256, BatchSize = 64, Threads = threads, BatchThreads = batchThreads };
        using var context = new LlamaContext(model, settings);
        using var batch = new LlamaBatch(64);

        Assert.True(context.HasThreadPool);
        var prompt = Enumerable.Range(100, 16).ToArray();
        for (var i = 0; i < prompt.Length; i++)
        {
            batch.Add(prompt[i], i, 0, wantLogits: i == prompt.Length - 1);
        }

        Assert.Equal(DecodeResult.Ok, context.Decode(batch));
        for (var position = prompt.Length; position < prompt.Length + 8; position++)
        {
            batch.Clear();
            batch.Add(prompt[0], position, 0, wantLogits: true);
            Assert.Equal(DecodeResult.Ok, context.Decode(batch));
            Assert.True(context.GetLogits(0).ContainsAnyExcept(0f));
        }

        Assert.Equal(prompt.Length + 7, context.SequencePositionMax(0));
    }
}
