using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Engine.Compute;

/// <summary>A llama.cpp context seen through <see cref="IComputeContext"/>; every call goes straight to it.</summary>
internal sealed class LlamaComputeContext(LlamaContext context, StateFootprint state) : IComputeContext
{
    public int ContextSize => context.ContextSize;

    public int ContextPerSequence => context.ContextPerSequence;

    public StateFootprint State => state;

    public ITokenBatch CreateBatch(int capacity) => new Batch(new LlamaBatch(capacity));

    public DecodeResult Decode(ITokenBatch batch) => context.Decode(((Batch)batch).Native);

    public int Sample(LlamaSampler sampler, int batchIndex, int generated) => sampler.Sample(context, batchIndex);

    public bool TryRemoveTail(int sequence, int from) => context.TryRemoveTail(sequence, from);

    public void ClearSequence(int sequence) => context.ClearSequence(sequence);

    public long GetSequenceStateSize(int sequence) => context.GetSequenceStateSize(sequence);

    public SequenceState GetSequenceState(int sequence) => SequenceState.Of(context.GetSequenceState(sequence));

    public bool TrySetSequenceState(int sequence, SequenceState state) => context.TrySetSequenceState(sequence, state.Data);

    public void Dispose() => context.Dispose();

    /// <summary>The native batch behind <see cref="ITokenBatch"/>; freed with the context's owner (the scheduler) via <see cref="Dispose"/>.</summary>
    internal sealed class Batch(LlamaBatch native) : ITokenBatch, IDisposable
    {
        public LlamaBatch Native => native;

        public int Capacity => native.Capacity;

        public int Count => native.Count;

        public int Add(int token, int position, int sequence, bool wantLogits) => native.Add(token, position, sequence, wantLogits);

        public void Clear() => native.Clear();

        public void Dispose() => native.Dispose();
    }
}
