using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Engine.Compute;

/// <summary>
/// A context's operations the scheduler uses: decode a batch, sample a request's next token, and manage sequences
/// (clear, trim, save and restore their state). Not thread-safe: the scheduler thread alone uses it.
/// </summary>
internal interface IComputeContext : IDisposable
{
    /// <summary>KV cells of the shared pool (tokens of all sequences together).</summary>
    int ContextSize { get; }

    /// <summary>The most cells one sequence may use.</summary>
    int ContextPerSequence { get; }

    /// <summary>What a sequence holds in fixed state and per token, and whether its tail can be trimmed.</summary>
    StateFootprint State { get; }

    /// <summary>A reusable batch of at most <paramref name="capacity"/> tokens for <see cref="Decode"/>.</summary>
    ITokenBatch CreateBatch(int capacity);

    /// <summary>Decodes a batch made by <see cref="CreateBatch"/>; the result is a value the scheduler acts on.</summary>
    DecodeResult Decode(ITokenBatch batch);

    /// <summary>
    /// The next token of a request from the logits of batch index <paramref name="batchIndex"/>, accepted into its
    /// sampler; <paramref name="generated"/> tokens were sampled for the request before. Throws
    /// <see cref="LlamaNativeException"/> when the request's constraints allow no token.
    /// </summary>
    int Sample(LlamaSampler sampler, int batchIndex, int generated);

    /// <summary>Removes positions [<paramref name="from"/>, end) of a sequence; false when the memory cannot (hybrid tails).</summary>
    bool TryRemoveTail(int sequence, int from);

    /// <summary>Removes every position of a sequence (always possible).</summary>
    void ClearSequence(int sequence);

    /// <summary>Serialized size of one sequence's state in bytes.</summary>
    long GetSequenceStateSize(int sequence);

    /// <summary>Copies one sequence's state (KV cells and recurrent state) to host memory.</summary>
    SequenceState GetSequenceState(int sequence);

    /// <summary>Restores a state from <see cref="GetSequenceState"/> into a sequence; false if it was refused.</summary>
    bool TrySetSequenceState(int sequence, SequenceState state);
}
