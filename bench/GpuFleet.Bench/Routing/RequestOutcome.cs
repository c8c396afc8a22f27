namespace GpuFleet.Bench.Routing;

/// <summary>What one request measured, in modelled seconds (real seconds times the speed-up).</summary>
internal sealed record RequestOutcome(
    string Kind, bool Ok, double TimeToFirstToken, IReadOnlyList<double> Gaps, int OutputTokens,
    int PromptTokens, int CachedTokens, double OracleTokens, string? Worker, string? Error);
