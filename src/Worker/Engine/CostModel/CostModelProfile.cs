namespace GpuFleet.Worker.Engine.CostModel;

/// <summary>
/// What one GPU running one model costs, per scheduler step: the figures <see cref="CostModelContext"/> turns a batch
/// into time with. All times are in seconds of the modelled hardware (before any speed-up).
/// </summary>
internal sealed record CostModelProfile
{
    public required string Name { get; init; }

    /// <summary>The architecture reported in logs and status.</summary>
    public required string Architecture { get; init; }

    /// <summary>Prompt tokens per second at a shallow depth (llama-bench pp512).</summary>
    public double PrefillTokensPerSecond { get; init; }

    /// <summary>Depth (tokens already in the sequence) at which a prefill token costs twice what it costs at depth 0.</summary>
    public double PrefillDepthDoublingTokens { get; init; } = double.PositiveInfinity;

    /// <summary>One decode step of one sequence at depth 0 (1 / llama-bench tg128).</summary>
    public double DecodeStepSeconds { get; init; }

    /// <summary>What each further sequence in the same decode step adds (weights are read once per step, not per sequence).</summary>
    public double DecodePerExtraSequenceSeconds { get; init; }

    /// <summary>What each context token of a decoding sequence adds to the step (attention over its KV cells).</summary>
    public double DecodePerContextTokenSeconds { get; init; }

    /// <summary>Fixed cost of every decode call (kernel launches, sampling, host round trip).</summary>
    public double StepOverheadSeconds { get; init; }

    /// <summary>KV cells of the pool when <see cref="EngineOptions.ContextSize"/> is unset: what fits beside the weights.</summary>
    public int KvTokens { get; init; } = 4096;

    /// <summary>Fixed state bytes per sequence (recurrent state).</summary>
    public long StateBytesPerSequence { get; init; }

    /// <summary>KV bytes per token.</summary>
    public long StateBytesPerToken { get; init; }

    /// <summary>Device-to-host (and back) copy rate for snapshots, bytes per second; infinity = free.</summary>
    public double HostTransferBytesPerSecond { get; init; } = double.PositiveInfinity;

    /// <summary>False for hybrid/recurrent models: a tail cannot be trimmed, so reuse needs state snapshots.</summary>
    public bool CanTrimTail { get; init; }

    /// <summary>Modelled seconds of one decode call.</summary>
    public double StepSeconds(int decodeSequences, long decodeContextTokens, IEnumerable<(int Tokens, int Depth)> prefills)
    {
        var seconds = 0.0;
        if (decodeSequences > 0)
        {
            seconds += DecodeStepSeconds + (DecodePerExtraSequenceSeconds * (decodeSequences - 1)) + (DecodePerContextTokenSeconds * decodeContextTokens);
        }

        var prefill = 0.0;
        if (PrefillTokensPerSecond > 0)
        {
            foreach (var (tokens, depth) in prefills)
            {
                // The average depth of the chunk's tokens sets their attention cost.
                var middle = depth + (tokens / 2.0);
                prefill += tokens / PrefillTokensPerSecond * (1 + (middle / PrefillDepthDoublingTokens));
            }
        }

        // Every step reads all the weights once: a few prompt tokens alone cost what a one-sequence decode step does,
        // not their share of pp512 (a step of 1 token at 1,000 tok/s would otherwise take 1 ms against tg128's 30 ms).
        seconds += decodeSequences > 0 || prefill == 0 ? prefill : Math.Max(prefill, DecodeStepSeconds);
        return seconds > 0 ? seconds + StepOverheadSeconds : 0;
    }

    /// <summary>Modelled seconds to copy <paramref name="bytes"/> of state between device and host.</summary>
    public double TransferSeconds(long bytes) => bytes / HostTransferBytesPerSecond;
}
