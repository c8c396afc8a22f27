using System.Globalization;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// <c>--requests-csv</c>: one row per request of every run (times in modelled seconds), for looking into where a policy's
/// tail comes from: which worker a turn went to, what it found cached there and how long it waited.
/// </summary>
internal sealed class RequestCsv : IDisposable
{
    private readonly StreamWriter _writer;

    public RequestCsv(string path)
    {
        _writer = new StreamWriter(path, append: false);
        _writer.WriteLine("policy,workload,load,session,turn,kind,sent_at,worker,route,prompt_tokens,cached_tokens,oracle_tokens,ttft,output_tokens,error");
    }

    public void Write(string policy, string workload, double load, IEnumerable<RequestOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        foreach (var o in outcomes.OrderBy(o => o.Origin.SentAt))
        {
            _writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{policy},{workload},{load},{o.Origin.Session},{o.Origin.Turn},{o.Kind},{o.Origin.SentAt:F3},{o.Worker},{o.Route},{o.PromptTokens},{o.CachedTokens},{o.OracleTokens:F0},{(o.Ok ? o.TimeToFirstToken.ToString("F3", CultureInfo.InvariantCulture) : "")},{o.OutputTokens},{Quote(o.Error)}"));
        }

        _writer.Flush();
    }

    public void Dispose() => _writer.Dispose();

    /// <summary>
    /// The TTFT percentiles of each policy and load of <paramref name="workload"/> in a file this class wrote (failed
    /// requests left out, as in the tables): enough to draw the plot again without running the fleet.
    /// </summary>
    public static IReadOnlyList<RunSummary> ReadTtft(string path, string workload)
    {
        var runs = new Dictionary<(string Policy, double Load), List<double>>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            // The error, last, is the only column that may hold commas.
            var columns = line.Split(',', 15);
            if (columns.Length < 15 || columns[1] != workload || columns[12].Length == 0)
            {
                continue;
            }

            var key = (columns[0], double.Parse(columns[2], CultureInfo.InvariantCulture));
            if (!runs.TryGetValue(key, out var ttft))
            {
                runs[key] = ttft = [];
            }

            ttft.Add(double.Parse(columns[12], CultureInfo.InvariantCulture));
        }

        return [.. runs.Select(run =>
        {
            var sorted = run.Value.Order().ToList();
            return new RunSummary(run.Key.Policy, workload, run.Key.Load, sorted.Count, 0, RunSummary.Percentile(sorted, 0.5), RunSummary.Percentile(sorted, 0.9),
                RunSummary.Percentile(sorted, 0.99), double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        })];
    }

    private static string Quote(string? text) => text is null ? "" : $"\"{text.Replace("\"", "\"\"", StringComparison.Ordinal).ReplaceLineEndings(" ")}\"";
}
