using System.Globalization;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Deploy.Tests.Kubernetes;

/// <summary>
/// Every HTTP path the manifests send to a program (probes, ServiceMonitor endpoints, scrape annotations) answers 200
/// on the real program: a worker (zero-cost simulated engine, tiny model) and a gateway in front of it.
/// </summary>
public sealed class ProbePathTests : IClassFixture<TestModels>
{
    private readonly TestModels _models;

    public ProbePathTests(TestModels models) => _models = models;

    [Fact]
    public async Task Every_probe_and_scrape_path_answers_on_the_program_it_is_sent_to()
    {
        var manifests = await RenderedManifests.RenderAsync("overlays/gpu");
        var paths = new Dictionary<string, HashSet<string>> { ["gateway"] = [], ["worker"] = [] };
        foreach (var (workload, container) in KubernetesManifestTests.Containers(manifests))
        {
            var name = container.GetProperty("name").GetString()!;
            if (name is not ("gateway" or "worker"))
            {
                continue; // init containers run commands, not servers
            }

            foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
            {
                if (container.TryGetProperty(probe, out var p))
                {
                    paths[name].Add(p.GetProperty("httpGet").GetProperty("path").GetString()!);
                }
            }

            paths[name].Add(RenderedManifests.Labels(workload.GetProperty("spec").GetProperty("template").GetProperty("metadata"), "annotations")["prometheus.io/path"]);
        }

        foreach (var monitor in manifests.OfKind("ServiceMonitor"))
        {
            var program = monitor.GetProperty("metadata").GetProperty("name").GetString()!.Replace("gpufleet-", "", StringComparison.Ordinal);
            paths[program].UnionWith(monitor.GetProperty("spec").GetProperty("endpoints").EnumerateArray().Select(e => e.GetProperty("path").GetString()!));
        }

        Assert.Contains("/readyz", paths["worker"]);
        await using var worker = await WorkerProcess.StartAsync(_models.PathOf(DemoArchitecture.Qwen3), "--simulate");
        var gatewayPort = FreePort.Next();
        await using var gateway = await DotnetServerProcess.StartAsync("gateway", "GpuFleet.Gateway.dll",
            ["--http-port", gatewayPort.ToString(CultureInfo.InvariantCulture), "--grpc-port", FreePort.Next().ToString(CultureInfo.InvariantCulture),
             "--worker", worker.BaseAddress.ToString().TrimEnd('/')],
            new Uri($"http://127.0.0.1:{gatewayPort}/healthz"));

        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        foreach (var (program, baseAddress) in new[] { ("worker", worker.BaseAddress), ("gateway", new Uri($"http://127.0.0.1:{gatewayPort}")) })
        {
            foreach (var path in paths[program])
            {
                using var response = await http.GetAsync(new Uri(baseAddress, path));
                Assert.True(response.IsSuccessStatusCode, $"{program} {path}: {(int)response.StatusCode}");
            }
        }
    }
}
