using System.Globalization;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// Where a policy wins or loses cache: its requests grouped by the gateway's route reason (<c>x-gpufleet-route</c>) and their kind (agent, chat, batch), each
/// group's share of requests, its cached tokens over the oracle's, its share of all the oracle tokens the run missed, and
/// its TTFT and median prompt. Printed with the progress lines so a reader sees which decisions cost the hits (the
/// anchors' policies name theirs too: affinity when a held prefix chose the worker, else load).
/// </summary>
internal static class RouteBreakdown
{
    public static IEnumerable<string> Lines(string policy, IReadOnlyList<RequestOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        var ok = outcomes.Where(o => o.Ok && o.Route is not null).ToList();
        if (ok.Count == 0)
        {
            yield break;
        }

        var missedTotal = ok.Sum(Missed);
        foreach (var group in ok.GroupBy(o => $"{o.Route} {o.Kind}").OrderByDescending(g => g.Count()))
        {
            var oracle = group.Sum(o => o.OracleTokens);
            var ttft = group.Select(o => o.TimeToFirstToken).Order().ToList();
            yield return string.Create(CultureInfo.InvariantCulture,
                $"routing:   {policy} {group.Key,-15} {group.Count(),5} requests ({(double)group.Count() / ok.Count,4:P0}), cached vs oracle {(oracle == 0 ? 1 : group.Sum(o => o.CachedTokens) / oracle),5:F2}, " +
                $"{(missedTotal == 0 ? 0 : group.Sum(Missed) / missedTotal),4:P0} of the missed tokens, ttft p50 {RunSummary.Percentile(ttft, 0.5),6:F2}s p90 {RunSummary.Percentile(ttft, 0.9),6:F2}s, prompt p50 {RunSummary.Percentile(group.Select(o => (double)o.PromptTokens).Order().ToList(), 0.5),6:F0} tokens");
        }
    }

    private static double Missed(RequestOutcome o) => Math.Max(0, o.OracleTokens - o.CachedTokens);
}
