namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// Why an attempt is moved to another worker before the first response byte. Only answers that may mean the fleet is
/// struggling spend the retry budget; re-placing work a worker cannot do (it is gone, or full) adds no load.
/// </summary>
internal enum RetryCause
{
    /// <summary>
    /// The connection to the worker failed or broke before it answered: the worker is gone (killed, crashed, restarting),
    /// and passive health takes it out after a few such failures. Its requests, queued or new, are re-placed on the
    /// workers still up without spending the budget: the dead worker does none of that work, so re-placing it adds no
    /// load to the fleet, and attempts stay bounded by <see cref="ForwardingOptions.MaxAttempts"/> and the workers not yet tried.
    /// </summary>
    ConnectionFailed,

    /// <summary>The worker answered 503 (draining, loading): it did no work, but a fleet of such answers is a failure to bound.</summary>
    WorkerUnavailable,

    /// <summary>
    /// The worker answered 429, full: a healthy worker's cheap refusal at admission, not a failure. Moving the request to
    /// a worker with room never spends the budget (attempts stay bounded by <see cref="ForwardingOptions.MaxAttempts"/>
    /// and by the workers not yet tried); the last worker's 429 reaches the client with its own Retry-After.
    /// </summary>
    WorkerAtCapacity,
}
