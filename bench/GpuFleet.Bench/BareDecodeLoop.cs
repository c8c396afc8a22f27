using System.Diagnostics;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Bench;

/// <summary>
/// The engine's decode work without the engine (issue 9, item 6): one context made like the scheduler's,
/// all prompts prefilled, then one llama_batch per step holding the next token of every sequence, one
/// llama_decode, one greedy sample per sequence. No queue, channels, text or status: what is left is
/// the floor the scheduler's 8-stream rate is compared with (engine_efficiency).
/// </summary>
internal sealed class BareDecodeLoop : IDisposable
{
    private readonly LlamaModel _model;
    private readonly LlamaContext _context;
    private readonly LlamaBatch _batch;

    public BareDecodeLoop(LlamaModel model, EngineOptions options)
    {
        _model = model;
        _context = new LlamaContext(model, ContextSettings(options));
        // The scheduler's batch is as large as the logical batch size, too.
        _batch = new LlamaBatch(options.BatchSize);
    }

    /// <summary>
    /// The context settings Scheduler.Initialize() builds from <paramref name="options"/>; keep the two in
    /// step, or the comparison is between different contexts.
    /// </summary>
    public static LlamaContextSettings ContextSettings(EngineOptions options)
    {
        var threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        return new LlamaContextSettings
        {
            Sequences = options.Slots,
            // An explicit ContextSize: the scheduler's auto sizing (ContextSize 0) needs a probe context the bench does not make.
            ContextSize = options.ContextSize,
            UnifiedKv = options.UnifiedKv,
            BatchSize = options.BatchSize,
            Threads = threads,
            BatchThreads = threads,
            RecurrentRollback = 0,
        };
    }

    /// <summary>Share of the last run's timed window spent inside llama_decode (the rest: batch building, sampling).</summary>
    public double LastDecodeShare { get; private set; }

    /// <summary>
    /// Generates <paramref name="tokens"/> tokens for each prompt (one sequence each) and returns decode
    /// tokens/s counted as the engine measurement counts them: tokens after each sequence's first, over the
    /// time from the last first token to the last token.
    /// </summary>
    public double Run(IReadOnlyList<int[]> prompts, int tokens)
    {
        var streams = prompts.Count;
        if (streams > _context.Sequences)
        {
            throw new ArgumentException($"{streams} prompts for {_context.Sequences} sequences.", nameof(prompts));
        }

        // A fresh greedy sampler per stream, made as InferenceEngine.Submit makes one per request.
        var g = SamplingParameters.Greedy;
        var samplers = prompts.Select(_ => LlamaSampler.Create(_model, g.Temperature, g.TopP, g.TopK, g.MinP,
            g.RepetitionPenalty, g.PresencePenalty, g.FrequencyPenalty, g.PenaltyLastN, g.Seed)).ToArray();
        try
        {
            _context.ClearAll();
            var clock = Stopwatch.StartNew();
            var next = new int[streams];
            var logitsIndex = new int[streams];
            var firstTokens = new long[streams];
            var decodeTicks = 0L;

            // Prefill in batch-sized chunks; a sequence's first token comes from its last prompt token's logits.
            var sequence = 0;
            var position = 0;
            while (sequence < streams)
            {
                _batch.Clear();
                var pending = new List<int>();
                while (sequence < streams && _batch.Count < _batch.Capacity)
                {
                    var prompt = prompts[sequence];
                    var last = position == prompt.Length - 1;
                    var index = _batch.Add(prompt[position], position, sequence, wantLogits: last);
                    if (last)
                    {
                        logitsIndex[sequence] = index;
                        pending.Add(sequence);
                        sequence++;
                        position = 0;
                    }
                    else
                    {
                        position++;
                    }
                }

                Decode();
                foreach (var s in pending)
                {
                    next[s] = samplers[s].Sample(_context, logitsIndex[s]);
                    firstTokens[s] = clock.ElapsedTicks;
                }
            }

            for (var step = 1; step < tokens; step++)
            {
                _batch.Clear();
                for (var s = 0; s < streams; s++)
                {
                    logitsIndex[s] = _batch.Add(next[s], prompts[s].Length + step - 1, s, wantLogits: true);
                }

                var before = clock.ElapsedTicks;
                Decode();
                decodeTicks += clock.ElapsedTicks - before;
                for (var s = 0; s < streams; s++)
                {
                    next[s] = samplers[s].Sample(_context, logitsIndex[s]);
                }
            }

            var elapsed = clock.ElapsedTicks - firstTokens.Max();
            LastDecodeShare = decodeTicks / (double)elapsed;
            var seconds = elapsed / (double)Stopwatch.Frequency;
            return streams * (tokens - 1) / seconds;
        }
        finally
        {
            foreach (var sampler in samplers)
            {
                sampler.Dispose();
            }
        }
    }

    public void Dispose()
    {
        _batch.Dispose();
        _context.Dispose();
    }

    private void Decode()
    {
        var rc = _context.Decode(_batch);
        if (rc != DecodeResult.Ok)
        {
            throw new InvalidOperationException($"llama_decode returned {rc} in the bare loop.");
        }
    }
}
