namespace GpuFleet.Gateway.Forwarding;

/// <summary>Why an attempt is moved to another worker before the first response byte; only failures spend the retry budget.</summary>
public enum RetryCause
{
    /// <summary>The connection to the worker failed before it answered: a failure, which the retry budget bounds.</summary>
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
