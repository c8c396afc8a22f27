namespace GpuFleet.Bench.Routing;

/// <summary>Per policy and workload: the figures of the table.</summary>
internal sealed record RunSummary(
    string Policy, string Workload, double Load, int Requests, int Failed,
    double TtftP50, double TtftP90, double TtftP99, double InterTokenP99, double TokensPerSecond,
    double HitRatio, double HitVsOracle, double Imbalance)
{
    public static RunSummary Of(string policy, string workload, double load, IReadOnlyList<RequestOutcome> outcomes, double modelledSeconds, int workers)
    {
        var ok = outcomes.Where(o => o.Ok).ToList();
        var ttft = ok.Select(o => o.TimeToFirstToken).Order().ToList();
        var gaps = ok.SelectMany(o => o.Gaps).Order().ToList();
        var prompt = ok.Sum(o => (double)o.PromptTokens);
        var cached = ok.Sum(o => (double)o.CachedTokens);
        var oracle = ok.Sum(o => o.OracleTokens);
        // Work per worker: the tokens it had to prefill plus those it generated.
        var work = ok.GroupBy(o => o.Worker ?? "?").Select(g => g.Sum(o => (double)(o.PromptTokens - o.CachedTokens + o.OutputTokens))).ToList();
        while (work.Count < workers)
        {
            work.Add(0);
        }

        return new RunSummary(policy, workload, load, outcomes.Count, outcomes.Count - ok.Count,
            Percentile(ttft, 0.50), Percentile(ttft, 0.90), Percentile(ttft, 0.99), Percentile(gaps, 0.99),
            ok.Sum(o => o.OutputTokens) / Math.Max(1e-9, modelledSeconds),
            prompt == 0 ? 0 : cached / prompt, oracle == 0 ? 1 : cached / oracle,
            work.Count == 0 || work.Average() == 0 ? 0 : work.Max() / work.Average());
    }

    /// <summary>Nearest-rank percentile of sorted values; NaN when there are none.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
