using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace GpuFleet.Testing;

/// <summary>
/// A real Prometheus server (Debian package prometheus, installed by test.sh) on 127.0.0.1 and a free port, scraping
/// the given targets, with its storage in a temporary folder; killed by its process id and the folder deleted on dispose.
/// </summary>
public sealed class PrometheusProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _output = new();

    private PrometheusProcess(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        BaseAddress = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"));
    }

    public Uri BaseAddress { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts Prometheus scraping each job's targets (host:port, <c>/metrics</c>) every <paramref name="interval"/>,
    /// evaluating <paramref name="ruleFiles"/> (already written) at that interval; returns once it is ready.
    /// </summary>
    public static async Task<PrometheusProcess> StartAsync(IReadOnlyDictionary<string, IReadOnlyList<Uri>> jobs, IEnumerable<string> ruleFiles, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        var directory = Directory.CreateTempSubdirectory("gpufleet-prometheus-").FullName;
        var seconds = string.Create(CultureInfo.InvariantCulture, $"{interval.TotalSeconds:0.###}s");
        var config = new StringBuilder();
        config.Append(CultureInfo.InvariantCulture, $"global:\n  scrape_interval: {seconds}\n  scrape_timeout: {seconds}\n  evaluation_interval: {seconds}\n");
        config.Append("rule_files:\n");
        foreach (var file in ruleFiles)
        {
            config.Append(CultureInfo.InvariantCulture, $"  - {JsonSerializer.Serialize(file)}\n");
        }

        config.Append("scrape_configs:\n");
        foreach (var (job, targets) in jobs)
        {
            var list = string.Join(", ", targets.Select(t => JsonSerializer.Serialize(t.Authority)));
            config.Append(CultureInfo.InvariantCulture, $"  - job_name: {job}\n    static_configs:\n      - targets: [{list}]\n");
        }

        var configPath = Path.Combine(directory, "prometheus.yml");
        await File.WriteAllTextAsync(configPath, config.ToString());
        var port = FreePort.Next();
        var start = new ProcessStartInfo("prometheus") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
                 {
                     "--config.file=" + configPath,
                     "--storage.tsdb.path=" + Path.Combine(directory, "data"),
                     string.Create(CultureInfo.InvariantCulture, $"--web.listen-address=127.0.0.1:{port}"),
                     "--log.level=warn",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("prometheus did not start (test.sh installs the prometheus package).");
        var server = new PrometheusProcess(process, directory, port);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync(); // drains the output readers: the reason it stopped is in the last lines
                throw new InvalidOperationException($"prometheus exited with {process.ExitCode}:\n{server.Output}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(server.BaseAddress, "/-/ready"));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, () => "prometheus never became ready:\n" + server.Output);
        return server;
    }

    /// <summary>
    /// Evaluates an instant query through <c>/api/v1/query</c>; the result array, or an exception carrying Prometheus'
    /// error when the expression is invalid.
    /// </summary>
    public async Task<JsonElement> QueryAsync(HttpClient http, string query)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var response = await http.PostAsync(new Uri(BaseAddress, "/api/v1/query"), new FormUrlEncodedContent([new("query", query)]));
        var text = await response.Content.ReadAsStringAsync();
        using var json = JsonDocument.Parse(text);
        if (json.RootElement.GetProperty("status").GetString() != "success")
        {
            throw new InvalidOperationException($"Prometheus rejected '{query}': {text}");
        }

        return json.RootElement.GetProperty("data").GetProperty("result").Clone();
    }

    /// <summary>The values of <paramref name="label"/> on series of <paramref name="metric"/> (as Grafana's label_values does).</summary>
    public async Task<IReadOnlyList<string>> LabelValuesAsync(HttpClient http, string label, string metric)
    {
        ArgumentNullException.ThrowIfNull(http);
        var uri = new Uri(BaseAddress, $"/api/v1/label/{Uri.EscapeDataString(label)}/values?match[]={Uri.EscapeDataString(metric)}");
        using var json = JsonDocument.Parse(await http.GetStringAsync(uri));
        return [.. json.RootElement.GetProperty("data").EnumerateArray().Select(v => v.GetString()!)];
    }

    /// <summary>Every metric name Prometheus holds (scraped series and recording-rule outputs).</summary>
    public Task<IReadOnlyList<string>> MetricNamesAsync(HttpClient http) => LabelValuesAsync(http, "__name__", "{__name__=~\".+\"}");

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync().WaitAsync(TestTimeouts.Default);
            }
        }
        finally
        {
            _process.Dispose();
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // A file still held open: the temp folder is cleaned by the system later.
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
