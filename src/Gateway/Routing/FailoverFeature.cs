namespace GpuFleet.Gateway.Routing;

/// <summary>
/// The failover stage's (FailoverMiddleware) account of a request's attempts, on the HttpContext's features: written by
/// that stage alone. Read by the response transform (may this refusal be retried?) and metrics (retries per worker).
/// </summary>
internal sealed class FailoverFeature
{
    private readonly HashSet<string> _tried = new(StringComparer.Ordinal);

    /// <summary>Destinations already tried by this request (failover picks among the others).</summary>
    public IReadOnlySet<string> Tried => _tried;

    /// <summary>Another worker may still be tried if the current attempt fails before the first byte.</summary>
    public bool MayRetry { get; private set; }

    public void StartAttempt(bool mayRetry) => MayRetry = mayRetry;

    public void AddTried(string destination) => _tried.Add(destination);
}
