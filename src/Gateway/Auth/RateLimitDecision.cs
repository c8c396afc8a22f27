namespace GpuFleet.Gateway.Auth;

/// <summary>The outcome of <see cref="KeyRateLimiter.AcquireAsync"/>: allowed or refused, and the values of the rate limit headers.</summary>
internal sealed class RateLimitDecision
{
    /// <summary>Allowed with nothing to report: the key has no limits.</summary>
    public static RateLimitDecision Unlimited { get; } = new(true, TimeSpan.Zero, RateLimitDimension.None, false, 0, null, null);

    internal RateLimitDecision(
        bool allowed, TimeSpan retryAfter, RateLimitDimension refusedBy, bool requestTooLarge, int requestedTokens, RateLimitWindow? requests, RateLimitWindow? tokens)
    {
        Allowed = allowed;
        RetryAfter = retryAfter;
        RefusedBy = refusedBy;
        RequestTooLarge = requestTooLarge;
        RequestedTokens = requestedTokens;
        Requests = requests;
        Tokens = tokens;
    }

    public bool Allowed { get; }

    /// <summary>
    /// When refused: how long until the sliding minute has freed enough for this request, if the key sends nothing
    /// else meanwhile (other replicas' traffic may take it first). Zero when allowed and for
    /// <see cref="RequestTooLarge"/>, which waiting never fixes.
    /// </summary>
    public TimeSpan RetryAfter { get; }

    public RateLimitDimension RefusedBy { get; }

    /// <summary>The request's estimated tokens alone exceed the key's tokens per minute: it can never be allowed.</summary>
    public bool RequestTooLarge { get; }

    /// <summary>The estimated tokens the request asked for.</summary>
    public int RequestedTokens { get; }

    /// <summary>The requests-per-minute state; null when the key has no such limit.</summary>
    public RateLimitWindow? Requests { get; }

    /// <summary>The tokens-per-minute state; null when the key has no such limit.</summary>
    public RateLimitWindow? Tokens { get; }
}
