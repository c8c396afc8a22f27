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

    private static string Quote(string? text) => text is null ? "" : $"\"{text.Replace("\"", "\"\"", StringComparison.Ordinal).ReplaceLineEndings(" ")}\"";
}
