namespace GpuFleet.Gateway.Routing;

/// <summary>
/// Why and with what the load-balancing policy chose this attempt's worker, on the HttpContext's features: written by
/// the policy alone, a new one per attempt it decides (YARP skips the policy when one destination is left, and the
/// previous choice then stands). Read by the chosen-worker stage, the response transform (the route header) and metrics.
/// </summary>
internal sealed class RouteChoiceFeature
{
    /// <summary>One of <see cref="RouteReasons"/>.</summary>
    public required string Reason { get; init; }

    /// <summary>Leading prompt blocks the chosen worker holds.</summary>
    public int HeldBlocks { get; init; }

    /// <summary>Estimated prompt tokens the chosen worker must prefill (those it does not hold): its first-token timeout grows with them.</summary>
    public int PrefillTokens { get; init; }

    /// <summary>Of the tokens it holds, those a running prefill there is still computing: the prompt waits for them too.</summary>
    public int AwaitedTokens { get; init; }
}
