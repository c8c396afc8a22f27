namespace GpuFleet.Bench.Routing;

/// <summary>
/// What one request measured, in modelled seconds (real seconds times the speed-up); <see cref="Route"/> is why the gateway
/// chose its worker (<c>x-gpufleet-route</c>: affinity, session, load, ...), absent under the anchors' policies.
/// </summary>
internal sealed record RequestOutcome(
    string Kind, bool Ok, double TimeToFirstToken, IReadOnlyList<double> Gaps, int OutputTokens,
    int PromptTokens, int CachedTokens, double OracleTokens, string? Worker, string? Error, string? Route = null)
{
    /// <summary>Its session, turn and send time (modelled seconds since the policy's run began), for <c>--requests-csv</c>.</summary>
    public (int Session, int Turn, double SentAt) Origin { get; init; }
}
