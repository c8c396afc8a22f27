namespace GpuFleet.Worker.Engine.Compute;

/// <summary>A token batch the scheduler fills: one sequence id per token.</summary>
internal interface ITokenBatch
{
    int Capacity { get; }

    int Count { get; }

    /// <summary>Appends one token; returns its index in the batch (the index its logits are read with).</summary>
    int Add(int token, int position, int sequence, bool wantLogits);

    void Clear();
}
