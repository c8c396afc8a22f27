using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine;

/// <summary>What a context holds per sequence and per token, measured on the context itself.</summary>
internal readonly record struct StateFootprint(long PerSequence, long PerToken, bool CanTrimTail);

/// <summary>
/// Creates the engine's llama.cpp context: the KV pool sized from the options, or from the model and the memory
/// available, warmed up and measured. Runs on the scheduler thread, which owns the context afterwards.
/// </summary>
internal static class EngineContext
{
    private const int WarmupTokens = 9;

    public static (LlamaContext Context, StateFootprint State) Create(LlamaModel model, EngineOptions options, ILogger logger)
    {
        var threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        var contextSize = options.ContextSize > 0 ? options.ContextSize : AutoContextSize(model, options, threads, logger);
        var context = New(model, options, contextSize, options.Slots, threads);
        try
        {
            using var batch = new LlamaBatch(options.BatchSize);
            return (context, Measure(model, context, batch));
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private static LlamaContext New(LlamaModel model, EngineOptions options, int contextSize, int sequences, int threads) => new(model, new LlamaContextSettings
    {
        Sequences = sequences,
        ContextSize = contextSize,
        UnifiedKv = options.UnifiedKv,
        BatchSize = options.BatchSize,
        Threads = threads,
        BatchThreads = threads,
        // No recurrent rollback snapshots: a partial rollback can silently succeed with a wrong state
        // (probe pitfall D), so tails are never trimmed on hybrid models; snapshots are used instead.
        RecurrentRollback = 0,
    });

    /// <summary>
    /// The pool for an unset <see cref="EngineOptions.ContextSize"/>: the model's training context, capped so that the
    /// KV cells and every slot's fixed state fit in <see cref="EngineOptions.KvCacheBytes"/> (default half the memory
    /// available where the cache lives). The state footprint is measured on a small probe context first, so that a
    /// too-large pool is never allocated.
    /// </summary>
    private static int AutoContextSize(LlamaModel model, EngineOptions options, int threads, ILogger logger)
    {
        var training = model.TrainingContextLength > 0 ? model.TrainingContextLength : 4096;
        StateFootprint state;
        using (var probe = New(model, options, Math.Max(256, options.BatchSize), 1, threads))
        using (var batch = new LlamaBatch(options.BatchSize))
        {
            state = Measure(model, probe, batch);
        }

        var budget = options.KvCacheBytes > 0 ? options.KvCacheBytes : AvailableMemoryBytes(model) / 2;
        var fits = state.PerToken == 0 ? training : (budget - (state.PerSequence * options.Slots)) / state.PerToken;
        var size = (int)Math.Clamp(fits / 256 * 256, 256, training);
        EngineLog.ContextSized(logger, size, training, size * state.PerToken, budget);
        return size;
    }

    private static long AvailableMemoryBytes(LlamaModel model)
    {
        if (model.GpuLayers != 0 && LlamaBackend.GpuFreeBytes() is { } gpu)
        {
            return gpu;
        }

        // MemAvailable (what can be allocated without swapping) rather than the total; the GC's view as a fallback.
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
            if (line is not null && long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out var kib))
            {
                return kib * 1024;
            }
        }
        catch (IOException)
        {
            // Not Linux, or /proc is hidden: fall through.
        }

        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>Warms a context up and measures its state footprint: fixed bytes per sequence (recurrent state) and bytes per token (KV).</summary>
    private static StateFootprint Measure(LlamaModel model, LlamaContext context, LlamaBatch batch)
    {
        long first = 0;
        for (var i = 0; i < WarmupTokens; i++)
        {
            batch.Add(i % model.VocabularySize, i, 0, i == WarmupTokens - 1);
            if (i == 0)
            {
                Decode();
                first = context.GetSequenceStateSize(0);
            }
        }

        Decode();
        var nine = context.GetSequenceStateSize(0);
        var perToken = Math.Max(0, (nine - first) / (WarmupTokens - 1));
        var canTrimTail = context.TryRemoveTail(0, WarmupTokens - 1);
        context.ClearAll();
        return new StateFootprint(Math.Max(0, first - perToken), perToken, canTrimTail);

        void Decode()
        {
            var rc = context.Decode(batch);
            if (rc != DecodeResult.Ok)
            {
                throw new LlamaNativeException($"The warm-up decode failed with {rc}.");
            }

            batch.Clear();
        }
    }
}
