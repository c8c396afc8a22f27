using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using GpuFleet.Gateway.Hosting;
using GpuFleet.Testing;
using GpuFleet.Worker;
using GpuFleet.Worker.Cli;

namespace GpuFleet.Deploy.Tests.Kubernetes;

/// <summary>
/// deploy/k8s rendered with <c>kubectl kustomize</c> (no cluster can run here): every object valid against the API
/// schemas, every selector matching its pods, and every argument, configuration variable, port and probe the
/// manifests use checked against the programs themselves (their switch tables, options types and parsers).
/// </summary>
public sealed partial class KubernetesManifestTests
{
    public static TheoryData<string> Overlays => new() { "overlays/gpu", "overlays/cpu-demo" };

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task An_overlay_renders_the_whole_fleet_and_every_object_validates(string overlay)
    {
        var manifests = await RenderedManifests.RenderAsync(overlay);

        manifests.Single("Deployment", "gpufleet-gateway");
        manifests.Single("StatefulSet", "gpufleet-worker");
        manifests.Single("Deployment", "gpufleet-redis");
        foreach (var kind in new[] { "Namespace", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "ConfigMap" })
        {
            Assert.NotEmpty(manifests.OfKind(kind));
        }

        Assert.All(manifests.Objects.Where(o => o.GetProperty("kind").GetString() != "Namespace"),
            o => Assert.Equal("gpufleet", o.GetProperty("metadata").GetProperty("namespace").GetString()));
    }

    [Fact]
    public async Task Every_example_validates()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(RepositoryPaths.Of("deploy", "k8s"), "examples"), "*.yaml"))
        {
            var manifests = await RenderedManifests.ValidateAsync(await File.ReadAllTextAsync(file), file);
            Assert.NotEmpty(manifests.Objects);
        }
    }

    [Fact]
    public async Task The_validation_rejects_an_invalid_object()
    {
        // The schema check must be able to fail: a replica count as text and a container without an image.
        const string invalid = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: broken}
            spec:
              replicas: two
              selector: {matchLabels: {app: x}}
              template:
                metadata: {labels: {app: x}}
                spec:
                  containers: [{name: x}]
            """;
        await Assert.ThrowsAnyAsync<Xunit.Sdk.XunitException>(() => RenderedManifests.ValidateAsync(invalid, "an invalid Deployment"));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Every_selector_matches_the_pods_it_means(string overlay)
    {
        var manifests = await RenderedManifests.RenderAsync(overlay);
        var pods = manifests.Workloads.Select(w => (Name: RenderedManifests.NameOf(w), Labels: RenderedManifests.PodLabels(w))).ToList();
        bool AnyPod(IReadOnlyDictionary<string, string> selector) => pods.Any(p => RenderedManifests.Matches(selector, p.Labels));

        foreach (var workload in manifests.Workloads)
        {
            var selector = RenderedManifests.Labels(workload.GetProperty("spec").GetProperty("selector"), "matchLabels");
            Assert.True(RenderedManifests.Matches(selector, RenderedManifests.PodLabels(workload)), $"{RenderedManifests.NameOf(workload)}: its selector does not match its own pods");
        }

        foreach (var service in manifests.OfKind("Service"))
        {
            Assert.True(AnyPod(RenderedManifests.Labels(service.GetProperty("spec"), "selector")), $"{RenderedManifests.NameOf(service)} selects no pods");
        }

        foreach (var budget in manifests.OfKind("PodDisruptionBudget"))
        {
            Assert.True(AnyPod(RenderedManifests.Labels(budget.GetProperty("spec").GetProperty("selector"), "matchLabels")), $"{RenderedManifests.NameOf(budget)} selects no pods");
        }

        foreach (var policy in manifests.OfKind("NetworkPolicy"))
        {
            Assert.True(AnyPod(RenderedManifests.Labels(policy.GetProperty("spec").GetProperty("podSelector"), "matchLabels")), $"{RenderedManifests.NameOf(policy)} applies to no pods");
            foreach (var peer in policy.GetProperty("spec").GetProperty("ingress").EnumerateArray().SelectMany(rule => rule.GetProperty("from").EnumerateArray()))
            {
                // Peers in this namespace must be pods of the fleet; peers elsewhere (Prometheus) are the user's.
                if (!peer.TryGetProperty("namespaceSelector", out _))
                {
                    Assert.True(AnyPod(RenderedManifests.Labels(peer.GetProperty("podSelector"), "matchLabels")), $"{RenderedManifests.NameOf(policy)} admits pods that do not exist");
                }
            }
        }

        var services = manifests.OfKind("Service").ToList();
        foreach (var monitor in manifests.OfKind("ServiceMonitor"))
        {
            var selector = RenderedManifests.Labels(monitor.GetProperty("spec").GetProperty("selector"), "matchLabels");
            var service = Assert.Single(services, s => RenderedManifests.Matches(selector, RenderedManifests.Labels(s.GetProperty("metadata"), "labels")));
            var ports = service.GetProperty("spec").GetProperty("ports").EnumerateArray().Select(p => p.GetProperty("name").GetString()).ToHashSet();
            Assert.All(monitor.GetProperty("spec").GetProperty("endpoints").EnumerateArray(), e => Assert.Contains(e.GetProperty("port").GetString(), ports));
        }

        foreach (var autoscaler in manifests.OfKind("HorizontalPodAutoscaler"))
        {
            var target = autoscaler.GetProperty("spec").GetProperty("scaleTargetRef");
            manifests.Single(target.GetProperty("kind").GetString()!, target.GetProperty("name").GetString()!);
        }

        var workers = manifests.Single("StatefulSet", "gpufleet-worker");
        var headless = manifests.Single("Service", workers.GetProperty("spec").GetProperty("serviceName").GetString()!);
        Assert.Equal("None", headless.GetProperty("spec").GetProperty("clusterIP").GetString());
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Every_argument_and_configuration_variable_is_one_the_program_knows(string overlay)
    {
        var manifests = await RenderedManifests.RenderAsync(overlay);
        var known = KnownConfigurationKeys();

        foreach (var (workload, container) in Containers(manifests))
        {
            var where = $"{RenderedManifests.NameOf(workload)} container {container.GetProperty("name").GetString()}";
            var args = Strings(container, "args");
            switch (container.GetProperty("name").GetString())
            {
                case "gateway":
                    // The gateway's own parser: an unknown switch or a missing value throws.
                    var settings = GatewayCommandLine.Parse([.. args]);
                    Assert.NotEmpty(settings);
                    break;
                case "worker":
                    // The worker's own parser: an unknown option, a missing value or a stray argument is a problem.
                    var (_, problems) = WorkerCommandLine.ParseServe(args);
                    Assert.True(problems.Count == 0, $"{where}: {string.Join(" ", problems)}");
                    break;
            }

            // Configuration through the environment (Section__Key) must name a real setting.
            var defined = new HashSet<string>(StringComparer.Ordinal);
            foreach (var variable in container.TryGetProperty("env", out var env) ? env.EnumerateArray() : [])
            {
                var name = variable.GetProperty("name").GetString()!;
                defined.Add(name);
                if (name.Contains("__", StringComparison.Ordinal))
                {
                    Assert.True(known.Contains(name.Replace("__", ":", StringComparison.Ordinal)), $"{where}: {name} is no setting of the program");
                }
            }

            foreach (var source in container.TryGetProperty("envFrom", out var envFrom) ? envFrom.EnumerateArray() : [])
            {
                var map = manifests.Single("ConfigMap", source.GetProperty("configMapRef").GetProperty("name").GetString()!);
                defined.UnionWith(map.GetProperty("data").EnumerateObject().Select(p => p.Name));
            }

            // $(VAR) in args and commands is expanded by Kubernetes only from variables the container defines.
            foreach (var reference in args.Concat(Strings(container, "command")).SelectMany(a => VariableReference().Matches(a)).Select(m => m.Groups[1].Value))
            {
                Assert.True(defined.Contains(reference), $"{where}: $({reference}) is not defined in the container");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Ports_probes_and_grace_periods_agree_with_what_the_programs_are_told(string overlay)
    {
        var manifests = await RenderedManifests.RenderAsync(overlay);
        foreach (var (workload, container) in Containers(manifests).Where(c => c.Container.GetProperty("name").GetString() is "gateway" or "worker"))
        {
            var where = $"{RenderedManifests.NameOf(workload)} container {container.GetProperty("name").GetString()}";
            var args = Strings(container, "args");
            var ports = container.GetProperty("ports").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!, p => p.GetProperty("containerPort").GetInt32());
            Assert.Equal(ports["http"], int.Parse(ArgumentAfter(args, "--http-port"), CultureInfo.InvariantCulture));
            Assert.Equal(ports["grpc"], int.Parse(ArgumentAfter(args, "--grpc-port"), CultureInfo.InvariantCulture));
            Assert.Equal("0.0.0.0", ArgumentAfter(args, "--host"));

            foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" }.Where(p => container.TryGetProperty(p, out _)))
            {
                var port = container.GetProperty(probe).GetProperty("httpGet").GetProperty("port").GetString()!;
                Assert.True(ports.ContainsKey(port), $"{where}: {probe} uses the unknown port {port}");
            }

            var annotations = RenderedManifests.Labels(workload.GetProperty("spec").GetProperty("template").GetProperty("metadata"), "annotations");
            Assert.Equal(ports["http"].ToString(CultureInfo.InvariantCulture), annotations["prometheus.io/port"]);

            // SIGTERM comes after preStop; the pod is killed at the grace period's end: preStop + the program's own
            // shutdown (a worker drains for --drain-timeout, then has 10 s to stop; a gateway host waits 30 s) must fit.
            var preStop = int.Parse(Strings(container.GetProperty("lifecycle").GetProperty("preStop").GetProperty("exec"), "command")[1], CultureInfo.InvariantCulture);
            var shutdown = container.GetProperty("name").GetString() == "worker" ? int.Parse(ArgumentAfter(args, "--drain-timeout"), CultureInfo.InvariantCulture) + 10 : 30;
            var grace = RenderedManifests.PodSpec(workload).GetProperty("terminationGracePeriodSeconds").GetInt32();
            Assert.True(grace > preStop + shutdown, $"{where}: grace {grace} s <= preStop {preStop} s + shutdown {shutdown} s");
        }

        foreach (var service in manifests.OfKind("Service"))
        {
            var selector = RenderedManifests.Labels(service.GetProperty("spec"), "selector");
            var podPorts = manifests.Workloads.Where(w => RenderedManifests.Matches(selector, RenderedManifests.PodLabels(w)))
                .SelectMany(w => RenderedManifests.PodSpec(w).GetProperty("containers").EnumerateArray())
                .SelectMany(c => c.GetProperty("ports").EnumerateArray().Select(p => p.GetProperty("name").GetString()))
                .ToHashSet();
            Assert.All(service.GetProperty("spec").GetProperty("ports").EnumerateArray(),
                p => Assert.Contains(p.GetProperty("targetPort").GetString(), podPorts));
        }
    }

    [Fact]
    public async Task The_dashboards_and_rules_are_the_repository_files()
    {
        var manifests = await RenderedManifests.RenderAsync("overlays/gpu");

        var dashboards = manifests.Single("ConfigMap", "gpufleet-dashboards");
        Assert.Equal("1", RenderedManifests.Labels(dashboards.GetProperty("metadata"), "labels")["grafana_dashboard"]);
        var files = Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "dashboards"), "*.json").ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        var data = dashboards.GetProperty("data").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        Assert.Equal(files.Keys.Order(), data.Keys.Order());
        Assert.All(files, file => Assert.True(file.Value == data[file.Key], $"the ConfigMap's {file.Key} differs from dashboards/{file.Key}"));

        // The PrometheusRule is generated from the rule file (deploy/k8s/generate-prometheus-rule.sh): same groups.
        var rules = await RenderedManifests.ReadYamlAsync(Path.Combine(RepositoryPaths.Of("deploy"), "prometheus", "gpufleet.rules.yml"));
        var rule = manifests.Single("PrometheusRule", "gpufleet");
        // Whitespace inside strings is left out of the comparison: YAML parsers disagree on the line breaks of folded
        // (>-) scalars with more-indented lines, and PromQL and the annotations do not depend on them.
        Assert.True(Canonical(rules) == Canonical(rule.GetProperty("spec")),
            "deploy/k8s/base/prometheus-rule.yaml differs from deploy/prometheus/gpufleet.rules.yml: run deploy/k8s/generate-prometheus-rule.sh");
    }

    private static string Canonical(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "{" + string.Join(",", element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal).Select(p => $"{p.Name}:{Canonical(p.Value)}")) + "}",
        JsonValueKind.Array => "[" + string.Join(",", element.EnumerateArray().Select(Canonical)) + "]",
        JsonValueKind.String => JsonSerializer.Serialize(Whitespace().Replace(element.GetString()!, " ").Trim()),
        _ => element.GetRawText(),
    };

    internal static IEnumerable<(JsonElement Workload, JsonElement Container)> Containers(RenderedManifests manifests) =>
        manifests.Workloads.SelectMany(w =>
        {
            var spec = RenderedManifests.PodSpec(w);
            var containers = spec.GetProperty("containers").EnumerateArray();
            var init = spec.TryGetProperty("initContainers", out var i) ? i.EnumerateArray() : default;
            return containers.Concat(init).Select(c => (w, c));
        });

    internal static List<string> Strings(JsonElement owner, string property) =>
        owner.TryGetProperty(property, out var values) ? [.. values.EnumerateArray().Select(v => v.GetString()!)] : [];

    private static string ArgumentAfter(List<string> args, string option)
    {
        var index = args.IndexOf(option);
        Assert.True(index >= 0 && index + 1 < args.Count, $"{option} is not set in [{string.Join(' ', args)}]");
        return args[index + 1];
    }

    /// <summary>Every configuration key the two programs read: their options types' properties and their switches' keys.</summary>
    private static HashSet<string> KnownConfigurationKeys()
    {
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var type in new[] { typeof(WorkerOptions).Assembly, typeof(GatewayOptions).Assembly }.SelectMany(a => a.GetTypes()))
        {
            if (type.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)?.GetRawConstantValue() is string section)
            {
                keys.UnionWith(type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => $"{section}:{p.Name}"));
            }
        }

        keys.UnionWith(WorkerCommandLine.ServeOptionKeys.Values);
        keys.UnionWith(GatewayCommandLine.Switches.Values);
        return keys;
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex VariableReference();
}
