using System.Text.Json;
using System.Text.RegularExpressions;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Observability;

/// <summary>One panel query of a dashboard.</summary>
internal sealed record PanelQuery(string Dashboard, string Panel, string Expression);

/// <summary>A dashboard template variable: its name, Grafana type, query (for query variables) and whether it offers "All".</summary>
internal sealed record DashboardVariable(string Name, string Type, string? Query, bool IncludeAll, string? AllValue);

/// <summary>A dashboard file read as Grafana would: its variables and every panel's queries.</summary>
internal sealed record Dashboard(string File, string Uid, string Title, JsonElement Root, IReadOnlyList<DashboardVariable> Variables, IReadOnlyList<PanelQuery> Queries);

/// <summary>
/// The repository's dashboards (dashboards/*.json) and Prometheus rules (deploy/prometheus/*.rules.yml), and the metric
/// names their expressions use, derived from the files themselves so that no list in a test can drift from them.
/// </summary>
internal static partial class ObservabilityFiles
{
    public static string RulesDirectory => RepositoryPaths.Of("deploy", "prometheus");

    public static IReadOnlyList<string> RuleFiles => [.. Directory.GetFiles(RulesDirectory, "*.rules.yml").Order(StringComparer.Ordinal)];

    public static IReadOnlyList<string> RuleTestFiles => [.. Directory.GetFiles(Path.Combine(RulesDirectory, "tests"), "*.yml").Order(StringComparer.Ordinal)];

    public static IReadOnlyList<Dashboard> Dashboards()
    {
        var files = Directory.GetFiles(RepositoryPaths.Of("dashboards"), "*.json").Order(StringComparer.Ordinal).ToList();
        return [.. files.Select(Load)];
    }

    /// <summary>Every <c>expr:</c> of the rule files (single-line or a folded <c>&gt;-</c> block), with the rule's name.</summary>
    public static IReadOnlyList<(string Rule, string Expression)> RuleExpressions()
    {
        var result = new List<(string, string)>();
        foreach (var file in RuleFiles)
        {
            var lines = File.ReadAllLines(file);
            string? name = null;
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i].Trim();
                if (line.StartsWith("- record:", StringComparison.Ordinal) || line.StartsWith("- alert:", StringComparison.Ordinal))
                {
                    name = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                }
                else if (line.StartsWith("expr:", StringComparison.Ordinal))
                {
                    var value = line["expr:".Length..].Trim();
                    if (value is ">-" or ">" or "|")
                    {
                        var indent = Indent(lines[i + 1]);
                        var parts = new List<string>();
                        for (i++; i < lines.Length && (lines[i].Trim().Length == 0 || Indent(lines[i]) >= indent); i++)
                        {
                            parts.Add(lines[i].Trim());
                        }

                        i--;
                        value = string.Join(" ", parts);
                    }

                    result.Add((name ?? "?", value));
                }
            }
        }

        return result;
    }

    /// <summary>Names of recording rules (<c>record:</c>): series that Prometheus makes, not any process.</summary>
    public static IReadOnlySet<string> RecordedNames() => RuleFiles
        .SelectMany(File.ReadAllLines)
        .Select(l => l.Trim())
        .Where(l => l.StartsWith("- record:", StringComparison.Ordinal))
        .Select(l => l["- record:".Length..].Trim())
        .ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// The metric names a PromQL expression selects: identifiers outside strings, label matchers, ranges and grouping
    /// clauses that are neither functions, aggregations nor keywords.
    /// </summary>
    public static IReadOnlySet<string> MetricNames(string expression)
    {
        var text = StringLiteral().Replace(expression, "\"\"");
        text = Braces().Replace(text, " ");
        text = Brackets().Replace(text, " ");
        text = Grouping().Replace(text, " ");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match match in Identifier().Matches(text))
        {
            var rest = text[(match.Index + match.Length)..].TrimStart();
            if (rest.StartsWith('(') || Keywords.Contains(match.Value) || match.Value.StartsWith('$'))
            {
                continue;
            }

            names.Add(match.Value);
        }

        return names;
    }

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "le", "inf", "nan", "Inf", "NaN",
    };

    private static int Indent(string line) => line.Length - line.TrimStart().Length;

    private static Dashboard Load(string file)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(file));
        var root = json.RootElement.Clone();
        var title = root.GetProperty("title").GetString()!;
        var variables = root.GetProperty("templating").GetProperty("list").EnumerateArray().Select(v => new DashboardVariable(
            v.GetProperty("name").GetString()!,
            v.GetProperty("type").GetString()!,
            v.TryGetProperty("definition", out var definition) ? definition.GetString() : null,
            v.TryGetProperty("includeAll", out var all) && all.GetBoolean(),
            v.TryGetProperty("allValue", out var allValue) && allValue.ValueKind == JsonValueKind.String ? allValue.GetString() : null)).ToList();
        var queries = new List<PanelQuery>();
        foreach (var panel in Panels(root))
        {
            foreach (var target in panel.GetProperty("targets").EnumerateArray())
            {
                queries.Add(new PanelQuery(Path.GetFileName(file), panel.GetProperty("title").GetString()!, target.GetProperty("expr").GetString()!));
            }
        }

        return new Dashboard(Path.GetFileName(file), root.GetProperty("uid").GetString()!, title, root, variables, queries);
    }

    /// <summary>Every panel, those nested in rows included.</summary>
    public static IEnumerable<JsonElement> Panels(JsonElement dashboard)
    {
        foreach (var panel in dashboard.GetProperty("panels").EnumerateArray())
        {
            if (panel.TryGetProperty("panels", out var nested))
            {
                foreach (var inner in nested.EnumerateArray())
                {
                    yield return inner;
                }
            }

            if (panel.TryGetProperty("targets", out _))
            {
                yield return panel;
            }
        }
    }

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Braces();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Brackets();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifier();
}
