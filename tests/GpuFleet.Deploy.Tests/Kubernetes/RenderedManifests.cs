using System.Text.Json;
using GpuFleet.Testing;

namespace GpuFleet.Deploy.Tests.Kubernetes;

/// <summary>
/// An overlay of deploy/k8s rendered by <c>kubectl kustomize</c> and validated against the Kubernetes API schemas by
/// tests/deploy/node/validate.mjs (npm kubernetes-models and its prometheus-operator and Gateway API models), which
/// also turns the YAML into JSON for the assertions.
/// </summary>
internal sealed class RenderedManifests
{
    private RenderedManifests(IReadOnlyList<JsonElement> objects) => Objects = objects;

    public IReadOnlyList<JsonElement> Objects { get; }

    public static async Task<RenderedManifests> RenderAsync(string kustomization)
    {
        var rendered = await ExternalCommand.RunAsync("kubectl", ["kustomize", Path.Combine(RepositoryPaths.Of("deploy", "k8s"), kustomization)]);
        Assert.True(rendered.ExitCode == 0, rendered.Describe($"kubectl kustomize {kustomization}"));
        return await ValidateAsync(rendered.Stdout, kustomization);
    }

    /// <summary>Validates YAML documents (a rendered overlay, or plain manifests such as the examples).</summary>
    public static async Task<RenderedManifests> ValidateAsync(string yaml, string what)
    {
        var script = Path.Combine(RepositoryPaths.Root, "tests", "deploy", "node", "validate.mjs");
        if (!Directory.Exists(Path.Combine(RepositoryPaths.Root, "tests", "deploy", "node", "node_modules")))
        {
            throw new InvalidOperationException("The manifest schemas are missing: run ./test.sh (it runs 'npm ci' in tests/deploy/node).");
        }

        var validated = await ExternalCommand.RunAsync("node", [script], stdin: yaml);
        Assert.True(validated.ExitCode == 0, $"{what} does not validate against the Kubernetes API schemas:\n{validated.Stderr}");
        using var json = JsonDocument.Parse(validated.Stdout);
        return new RenderedManifests([.. json.RootElement.EnumerateArray().Select(o => o.Clone())]);
    }

    /// <summary>Any YAML file as JSON (its first document), without schema validation.</summary>
    public static async Task<JsonElement> ReadYamlAsync(string path)
    {
        var script = Path.Combine(RepositoryPaths.Root, "tests", "deploy", "node", "validate.mjs");
        var converted = await ExternalCommand.RunAsync("node", [script, "--plain"], stdin: await File.ReadAllTextAsync(path));
        Assert.True(converted.ExitCode == 0, converted.Describe($"reading {path}"));
        using var json = JsonDocument.Parse(converted.Stdout);
        return json.RootElement[0].Clone();
    }

    public IEnumerable<JsonElement> OfKind(string kind) => Objects.Where(o => o.GetProperty("kind").GetString() == kind);

    public JsonElement Single(string kind, string name) =>
        Assert.Single(OfKind(kind), o => o.GetProperty("metadata").GetProperty("name").GetString() == name);

    /// <summary>Deployments and StatefulSets: the objects that make pods.</summary>
    public IEnumerable<JsonElement> Workloads => Objects.Where(o => o.GetProperty("kind").GetString() is "Deployment" or "StatefulSet");

    public static string NameOf(JsonElement o) => $"{o.GetProperty("kind").GetString()}/{o.GetProperty("metadata").GetProperty("name").GetString()}";

    public static JsonElement PodSpec(JsonElement workload) => workload.GetProperty("spec").GetProperty("template").GetProperty("spec");

    public static IReadOnlyDictionary<string, string> PodLabels(JsonElement workload) =>
        Labels(workload.GetProperty("spec").GetProperty("template").GetProperty("metadata"), "labels");

    public static IReadOnlyDictionary<string, string> Labels(JsonElement owner, string property) =>
        owner.TryGetProperty(property, out var labels)
            ? labels.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!)
            : new Dictionary<string, string>();

    /// <summary>True when every pair of <paramref name="selector"/> is among <paramref name="labels"/> (an empty selector matches nothing here: ours never mean "all").</summary>
    public static bool Matches(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels) =>
        selector.Count > 0 && selector.All(pair => labels.TryGetValue(pair.Key, out var value) && value == pair.Value);
}
