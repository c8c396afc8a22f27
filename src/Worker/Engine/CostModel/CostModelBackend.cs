using GpuFleet.Worker.Engine.Compute;
using GpuFleet.Worker.Engine.Simulated;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine.CostModel;

/// <summary>
/// A compute backend that models a GPU instead of running one (<c>--simulate-profile</c>): each decode takes the time the
/// profile gives for its batch, state copies take their transfer time, and the KV pool has the profile's capacity; the
/// sampled tokens are ordinary vocabulary tokens (the simulated reply's text), ending with end-of-generation after
/// <paramref name="replyTokens"/> tokens. The scheduler in front of it is the real one.
/// </summary>
/// <remarks>
/// Time is real time divided by <paramref name="speedup"/>: a modelled 30 ms step takes 3 ms at 10x. Every worker of a
/// simulated fleet runs at the same speed-up, so every routing policy sees the same clock; figures measured against it
/// are multiplied back by the speed-up. Waits follow a device timeline (busy-until), so the CPU time the scheduler itself
/// spends between steps is absorbed instead of added, and sub-millisecond remainders carry over rather than round up.
/// </remarks>
internal sealed class CostModelBackend(LlamaModel model, CostModelProfile profile, double speedup, int replyTokens) : IComputeBackend
{
    public string Architecture => profile.Architecture;

    public bool UsesStateSnapshots => !profile.CanTrimTail;

    public double TimeScale => speedup;

    public CostModelProfile Profile => profile;

    public IComputeContext CreateContext(EngineOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var contextSize = options.ContextSize > 0 ? options.ContextSize : profile.KvTokens;
        var reply = model.Tokenize(SimulatedEngine.ReplyText, addSpecial: false, parseSpecial: false);
        var endOfGeneration = model.SpecialTokens.Select(t => t.Id).Where(model.IsEndOfGeneration).DefaultIfEmpty(-1).First();
        return new CostModelContext(profile, speedup, contextSize, options.Slots, reply, endOfGeneration, replyTokens);
    }
}
