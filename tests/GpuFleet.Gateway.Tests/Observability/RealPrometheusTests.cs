using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Observability;

/// <summary>
/// A real Prometheus scrapes a real fleet (two workers on the tiny model behind two gateway replicas, API keys on) under
/// a small load, with the repository's rules loaded; then every dashboard panel's expression and every rule is
/// evaluated through Prometheus' HTTP API, the metric names they use are checked against what the processes export,
/// and fleet totals are checked against the workers' own numbers.
/// </summary>
public sealed partial class RealPrometheusTests(PrometheusFleet fleet) : IClassFixture<PrometheusFleet>
{
    /// <summary>The panels that must show data after the load (the others show events that did not happen: retries, 429s ...).</summary>
    private static readonly (string Dashboard, string Panel)[] CorePanels =
    [
        ("fleet-capacity.json", "Headroom: more concurrent sessions within the TTFT objective"),
        ("fleet-capacity.json", "One more GPU adds"),
        ("fleet-capacity.json", "Workers available"),
        ("fleet-capacity.json", "Fleet generated tokens/s"),
        ("fleet-capacity.json", "Generated tokens/s per worker"),
        ("fleet-capacity.json", "Queue depth per worker"),
        ("fleet-capacity.json", "Fleet slots"),
        ("fleet-capacity.json", "KV/state occupancy per worker"),
        ("latency-slo.json", "TTFT objective met (first token within 10 s)"),
        ("latency-slo.json", "Time to first token by model"),
        ("latency-slo.json", "Time per output token by model"),
        ("latency-slo.json", "Request duration by model"),
        ("routing.json", "Prefix-cache hit ratio (fleet)"),
        ("routing.json", "Routing decisions by reason"),
        ("routing.json", "Requests per worker"),
        ("worker.json", "Slots"),
        ("worker.json", "KV/state memory"),
        ("worker.json", "Step duration"),
        ("worker.json", "Queue wait"),
        ("usage.json", "Tokens per key over the range"),
        ("usage.json", "Requests/s per key"),
    ];

    [Fact]
    public async Task Every_dashboard_panel_and_rule_evaluates_on_a_real_prometheus_and_the_core_panels_have_data()
    {
        var failures = new List<string>();
        var empty = new List<(string Dashboard, string Panel)>();
        foreach (var dashboard in ObservabilityFiles.Dashboards())
        {
            var values = await VariableValuesAsync(dashboard);
            foreach (var query in dashboard.Queries)
            {
                try
                {
                    var result = await fleet.Prometheus.QueryAsync(fleet.Http, Substitute(query.Expression, values));
                    if (result.GetArrayLength() == 0)
                    {
                        empty.Add((query.Dashboard, query.Panel));
                    }
                }
                catch (InvalidOperationException ex)
                {
                    failures.Add($"{query.Dashboard} / {query.Panel}: {ex.Message}");
                }
            }
        }

        foreach (var (rule, expression) in ObservabilityFiles.RuleExpressions())
        {
            try
            {
                await fleet.Prometheus.QueryAsync(fleet.Http, expression);
            }
            catch (InvalidOperationException ex)
            {
                failures.Add($"rule {rule}: {ex.Message}");
            }
        }

        // Prometheus itself evaluated every rule, at the rules' own schedule, without error.
        using var rules = JsonDocument.Parse(await fleet.Http.GetStringAsync(new Uri(fleet.Prometheus.BaseAddress, "/api/v1/rules")));
        var loaded = rules.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray().SelectMany(g => g.GetProperty("rules").EnumerateArray()).ToList();
        Assert.Equal(ObservabilityFiles.RuleExpressions().Count, loaded.Count);
        failures.AddRange(loaded.Where(r => r.GetProperty("health").GetString() != "ok")
            .Select(r => $"rule {r.GetProperty("name").GetString()}: {r.GetProperty("health").GetString()} {(r.TryGetProperty("lastError", out var e) ? e.GetString() : "")}"));

        Assert.True(failures.Count == 0, string.Join("\n", failures));
        var coreEmpty = CorePanels.Where(core => empty.Contains(core)).ToList();
        Assert.True(coreEmpty.Count == 0, "core panels without data: " + string.Join("; ", coreEmpty.Select(c => $"{c.Dashboard} / {c.Panel}")));
    }

    [Fact]
    public async Task Every_metric_a_dashboard_or_rule_uses_is_exported_by_some_process_or_recorded_by_a_rule()
    {
        var exported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var target in fleet.Gateways.Select(g => g.BaseAddress).Concat(fleet.Workers.Select(w => w.BaseAddress)))
        {
            exported.UnionWith((await fleet.Http.ScrapeAsync(new Uri(target, "/metrics"))).Select(s => s.Name));
        }

        var recorded = ObservabilityFiles.RecordedNames();
        var inPrometheus = (await fleet.Prometheus.MetricNamesAsync(fleet.Http)).ToHashSet(StringComparer.Ordinal);
        var used = ObservabilityFiles.Dashboards().SelectMany(d => d.Queries.Select(q => (Where: $"{q.Dashboard} / {q.Panel}", q.Expression)))
            .Concat(ObservabilityFiles.RuleExpressions().Select(r => (Where: "rule " + r.Rule, r.Expression)))
            .SelectMany(q => ObservabilityFiles.MetricNames(q.Expression).Select(name => (q.Where, Name: name)))
            .ToList();
        Assert.Contains(used, u => u.Name == "gen_ai_server_time_to_first_token_seconds_bucket");
        var missing = used.Where(u => !(u.Name.Contains(':', StringComparison.Ordinal) ? recorded.Contains(u.Name) : exported.Contains(u.Name))).ToList();
        Assert.True(missing.Count == 0, "not exported: " + string.Join("; ", missing.Select(m => $"{m.Name} ({m.Where})")));
        var unseen = used.Select(u => u.Name).Distinct(StringComparer.Ordinal).Where(n => !inPrometheus.Contains(n)).ToList();
        Assert.True(unseen.Count == 0, "Prometheus holds no series of: " + string.Join(", ", unseen));
    }

    [Fact]
    public async Task Fleet_totals_equal_the_sum_over_workers_whatever_the_number_of_gateway_replicas()
    {
        double generated = 0, slots = 0, prompt = 0;
        foreach (var worker in fleet.Workers)
        {
            var samples = await fleet.Http.ScrapeAsync(new Uri(worker.BaseAddress, "/metrics"));
            generated += samples.Sum("gpufleet_worker_generated_tokens_total");
            slots += samples.Sum("gpufleet_worker_slots");
            prompt += samples.Sum("gpufleet_worker_prompt_tokens_total");
        }

        Assert.True(generated > 0);
        Assert.Equal(generated, await ScalarAsync("sum(gpufleet_worker_generated_tokens_total)"));
        Assert.Equal(slots, await ScalarAsync("sum(gpufleet_worker_slots)"));
        // Each request passes one gateway: the replicas' per-request counters add up to the workers' totals, not twice them.
        Assert.Equal(generated, await ScalarAsync("sum(gpufleet_gateway_tokens_total{kind=\"completion\"})"));
        Assert.Equal(prompt, await ScalarAsync("sum(gpufleet_gateway_tokens_total{kind=\"prompt\"})"));
        Assert.Equal(PrometheusFleet.Requests, await ScalarAsync("sum(gpufleet_gateway_requests_total{status=\"2xx\"})"));
        // Each replica reports every worker: a naive count doubles, the dashboards' dedup does not.
        Assert.Equal(4, await ScalarAsync("count(gpufleet_gateway_worker_available == 1)"));
        Assert.Equal(2, await ScalarAsync("count(max by (worker) (gpufleet_gateway_worker_available) == 1)"));
        Assert.Equal(2, await ScalarAsync("gpufleet:fleet_workers_available:count"));
    }

    [Fact]
    public async Task Usage_is_labelled_by_key_name_and_the_refused_request_by_its_cause()
    {
        var keys = await fleet.Prometheus.LabelValuesAsync(fleet.Http, "key", "gpufleet_gateway_key_requests_total");
        Assert.Equal(["alice", "bob"], keys.Order(StringComparer.Ordinal));
        Assert.Equal(PrometheusFleet.Requests / 2, await ScalarAsync("sum(gpufleet_gateway_key_requests_total{key=\"bob\",status=\"2xx\"})"));
        Assert.Equal(1, await ScalarAsync("sum(gpufleet_gateway_refusals_total{status=\"400\"})"));
        // The gateway answered it itself: its cause is the gateway's error code, not "worker".
        var causes = await fleet.Prometheus.LabelValuesAsync(fleet.Http, "cause", "gpufleet_gateway_refusals_total{status=\"400\"}");
        Assert.DoesNotContain("worker", Assert.Single(causes), StringComparison.Ordinal);
        // No key secret anywhere in any process' metrics.
        foreach (var target in fleet.Gateways.Select(g => g.BaseAddress))
        {
            var text = await fleet.Http.GetStringAsync(new Uri(target, "/metrics"));
            Assert.All(fleet.Keys.Values, key => Assert.DoesNotContain(key["gf-".Length..], text, StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// A value for every template variable as Grafana fills it in: "All" (its allValue) when offered, else the first
    /// value Prometheus has, as it is (Grafana escapes regex characters only for multi-value and "All" variables).
    /// </summary>
    private async Task<Dictionary<string, string>> VariableValuesAsync(Dashboard dashboard)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["__rate_interval"] = "5m",
            ["__interval"] = "15s",
            ["__range"] = "10m",
        };
        foreach (var variable in dashboard.Variables.Where(v => v.Type == "query"))
        {
            var match = LabelValues().Match(variable.Query ?? string.Empty);
            Assert.True(match.Success, $"{dashboard.File}: variable {variable.Name} is not label_values(metric, label): {variable.Query}");
            var found = await fleet.Prometheus.LabelValuesAsync(fleet.Http, match.Groups["label"].Value, match.Groups["metric"].Value);
            Assert.True(found.Count > 0, $"{dashboard.File}: variable {variable.Name} ({variable.Query}) has no values");
            values[variable.Name] = variable.IncludeAll && variable.AllValue is { } all ? all : found[0];
        }

        return values;
    }

    /// <summary>Replaces <c>$name</c> and <c>${name}</c> as Grafana does, longest names first.</summary>
    private static string Substitute(string expression, Dictionary<string, string> values)
    {
        foreach (var (name, value) in values.OrderByDescending(v => v.Key.Length))
        {
            expression = expression.Replace("${" + name + "}", value, StringComparison.Ordinal).Replace("$" + name, value, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("$", expression, StringComparison.Ordinal);
        return expression;
    }

    private async Task<double> ScalarAsync(string query) =>
        await fleet.ScalarOrNullAsync(query) ?? throw new InvalidOperationException($"'{query}' returned nothing.\n{fleet.Prometheus.Output}");

    [GeneratedRegex(@"^label_values\((?<metric>[^,]+),\s*(?<label>\w+)\)$")]
    private static partial Regex LabelValues();
}

/// <summary>
/// The fleet of <see cref="RealPrometheusTests"/>, started once for the class: two workers on the tiny model behind two
/// gateway replicas with API keys, a real Prometheus scraping all four every second with the repository's rules, and
/// a small load already sent and seen by Prometheus.
/// </summary>
public sealed partial class PrometheusFleet : IAsyncLifetime
{
    public const string Model = "tiny-qwen3";
    public const int Requests = 8;

    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-prometheus-fleet-").FullName;
    private readonly List<WorkerProcess> _workers = [];
    private readonly List<GatewayProcess> _gateways = [];
    private readonly Dictionary<string, string> _keys = new(StringComparer.Ordinal);
    private readonly HttpClient _http = new() { Timeout = TestTimeouts.Default };
    private readonly HttpClient _authorized = new() { Timeout = TestTimeouts.Default };
    private PrometheusProcess? _prometheus;

    public async Task InitializeAsync()
    {
        try
        {
            await StartAsync();
        }
        catch
        {
            // xUnit does not dispose a fixture whose start failed: stop what did start.
            await DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, Model + ".gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen3, DemoModelSize.Tiny));
        var keysFile = Path.Combine(_directory, "keys.json");
        foreach (var name in new[] { "alice", "bob" })
        {
            using var stdout = new StringWriter(CultureInfo.InvariantCulture);
            using var stderr = new StringWriter(CultureInfo.InvariantCulture);
            Assert.Equal(0, await KeysCommand.RunAsync(["add", name, "--keys", keysFile], stdout, stderr));
            _keys[name] = stdout.ToString().Trim();
        }

        _workers.AddRange(await Task.WhenAll(Enumerable.Range(0, 2).Select(i =>
            WorkerProcess.StartAsync(model, "--name", $"w{i}", "--slots", "2", "--ctx-size", "8192", "--enable-thinking", "false"))));
        string[] workerArgs = [.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') }), "--keys", keysFile];
        _gateways.AddRange(await Task.WhenAll(GatewayProcess.StartAsync(workerArgs), GatewayProcess.StartAsync(workerArgs)));
        // /workers needs a key like everything but /healthz, /readyz and /metrics.
        _authorized.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _keys["alice"]);
        foreach (var gateway in _gateways)
        {
            await gateway.WaitForWorkersAsync(_authorized, views => views.Count(v => v.Available) == 2);
        }

        // The rules as shipped, evaluated every second instead of every 15-30 s so that the test need not wait.
        var rules = new List<string>();
        foreach (var file in ObservabilityFiles.RuleFiles)
        {
            var copy = Path.Combine(_directory, Path.GetFileName(file));
            await File.WriteAllTextAsync(copy, GroupInterval().Replace(await File.ReadAllTextAsync(file), "${indent}interval: 1s"));
            rules.Add(copy);
        }

        _prometheus = await PrometheusProcess.StartAsync(
            new Dictionary<string, IReadOnlyList<Uri>>
            {
                ["gpufleet-gateway"] = [.. _gateways.Select(g => g.BaseAddress)],
                ["gpufleet-worker"] = [.. _workers.Select(w => w.BaseAddress)],
            },
            rules,
            TimeSpan.FromSeconds(1));

        // Rates need the counters seen before they grow: a load that ends before the first scrape leaves every
        // completion counter flat from its first sample on, and a rate over it is zero forever.
        await TestTimeouts.WaitUntilAsync(
            async () => await ScalarOrNullAsync("count(gpufleet_worker_requests_total{outcome=\"completed\"} == 0)") == _workers.Count,
            () => "Prometheus never scraped the idle workers:\n" + _prometheus.Output);
        await SendLoadAsync();
    }

    public IReadOnlyList<WorkerProcess> Workers => _workers;

    internal IReadOnlyList<GatewayProcess> Gateways => _gateways;

    public IReadOnlyDictionary<string, string> Keys => _keys;

    public HttpClient Http => _http;

    public PrometheusProcess Prometheus => _prometheus!;

    public async Task DisposeAsync()
    {
        if (_prometheus is not null)
        {
            await _prometheus.DisposeAsync();
        }

        foreach (var gateway in _gateways)
        {
            await gateway.DisposeAsync();
        }

        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        _http.Dispose();
        _authorized.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>
    /// Requests alternating between the two gateways and the two keys, streamed and not, conversations repeated (cache
    /// hits), and one bad request; then waits until Prometheus has scraped all of it and evaluated the rules on it.
    /// </summary>
    private async Task SendLoadAsync()
    {
        for (var i = 0; i < Requests; i++)
        {
            var gateway = _gateways[i % 2];
            var key = i % 2 == 0 ? "alice" : "bob";
            var messages = Routing.RoutingTests.Conversation($"prometheus-{i / 4}");
            var stream = i % 2 == 0;
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway.BaseAddress, "/v1/chat/completions"))
            {
                Content = Routing.RoutingTests.Json(new { model = Model, max_tokens = 6, stream, messages }),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _keys[key]);
            using var response = await _http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        }

        using (var bad = new HttpRequestMessage(HttpMethod.Post, new Uri(_gateways[0].BaseAddress, "/v1/chat/completions"))
        {
            Content = new StringContent($$"""{"model":"{{Model}}","messages":"not a list"}""", Encoding.UTF8, "application/json"),
        })
        {
            bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _keys["alice"]);
            using var response = await _http.SendAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        double completed = 0;
        foreach (var worker in _workers)
        {
            completed += (await _http.ScrapeAsync(new Uri(worker.BaseAddress, "/metrics"))).Sum("gpufleet_worker_requests_total", ("outcome", "completed"));
        }

        var seen = new Dictionary<string, double?>(StringComparer.Ordinal);
        async Task<double?> Seen(string query) => seen[query] = await ScalarOrNullAsync(query);
        await TestTimeouts.WaitUntilAsync(async () =>
            await Seen("sum(gpufleet_worker_requests_total{outcome=\"completed\"})") == completed
            && await Seen("sum(gpufleet_gateway_requests_total{status=\"2xx\"})") == Requests
            && await Seen("sum(gpufleet_gateway_refusals_total)") == 1
            && await Seen("count(gpufleet:worker_headroom_sessions:ttft10s)") == 2
            && await Seen("count(gpufleet:worker_request_seconds:mean5m)") >= 1,
            () => $"Prometheus never saw the load (expected {completed} completed, {Requests} 2xx, 1 refusal): " +
                string.Join("; ", seen.Select(q => $"{q.Key} = {q.Value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}")) + "\n" + _prometheus!.Output);
    }

    /// <summary>The value of a query that returns one sample, or null when it returns none.</summary>
    public async Task<double?> ScalarOrNullAsync(string query)
    {
        var result = await _prometheus!.QueryAsync(_http, query);
        return result.GetArrayLength() == 0
            ? null
            : double.Parse(result[0].GetProperty("value")[1].GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"(?<indent>^[ ]*)interval:[ ]*\S+", RegexOptions.Multiline)]
    private static partial Regex GroupInterval();
}
