using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine.Compute;

/// <summary>
/// What runs the model's arithmetic for the <see cref="Scheduler"/>: llama.cpp (<see cref="LlamaComputeBackend"/>) or a
/// calibrated cost model (<see cref="CostModel.CostModelBackend"/>). Everything else (slots, queue, admission, prefix reuse,
/// snapshots) is the scheduler's and is the same for both, so a simulated fleet schedules exactly as a real one.
/// </summary>
internal interface IComputeBackend
{
    /// <summary>The architecture named in logs and status (the model's, or the profile's).</summary>
    string Architecture { get; }

    /// <summary>
    /// True when a sequence's tail cannot be trimmed (hybrid or recurrent models): prefix reuse then goes through
    /// sequence-state snapshots in the host cache.
    /// </summary>
    bool UsesStateSnapshots { get; }

    /// <summary>
    /// Seconds of the engine's time per real second: 1 for llama.cpp, the speed-up for a cost model run faster than real
    /// time. The scheduler's time limits (<see cref="EngineOptions.PrefillOvertakeLimit"/>) are in the engine's time, so a
    /// simulated fleet run at a speed-up schedules as the card it models would.
    /// </summary>
    double TimeScale { get; }

    /// <summary>Creates the context with its KV pool, warmed up and measured; called on the scheduler thread, which owns it.</summary>
    IComputeContext CreateContext(EngineOptions options, ILogger logger);
}
