namespace GpuFleet.Worker.Engine.Compute;

/// <summary>
/// A sequence's state saved to host memory: the bytes to restore it from and the host memory it occupies, which the
/// host cache budgets (equal for llama.cpp; a cost model keeps a small token in <see cref="Data"/> for a modelled size).
/// </summary>
internal sealed record SequenceState(byte[] Data, long Bytes)
{
    public static SequenceState Of(byte[] data) => new(data, data.Length);
}
