using System.Globalization;
using System.Text;

namespace GpuFleet.Testing;

/// <summary>One sample of a Prometheus text exposition: metric name, labels and value.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    /// <summary>True when every given label has the given value (other labels may be present).</summary>
    public bool Has(params (string Label, string Value)[] labels) =>
        labels.All(l => Labels.TryGetValue(l.Label, out var value) && value == l.Value);
}

/// <summary>
/// Parses the Prometheus text exposition format (0.0.4) into samples, so tests assert on names, labels and values
/// instead of on the exporter's text layout (label order, spacing, extra labels such as <c>otel_scope_name</c>).
/// </summary>
public static class PrometheusSamples
{
    public static IReadOnlyList<PrometheusSample> Parse(string exposition)
    {
        ArgumentNullException.ThrowIfNull(exposition);
        var samples = new List<PrometheusSample>();
        foreach (var raw in exposition.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            samples.Add(ParseLine(line));
        }

        return samples;
    }

    /// <summary>GETs a <c>/metrics</c> endpoint and parses it.</summary>
    public static async Task<IReadOnlyList<PrometheusSample>> ScrapeAsync(this HttpClient http, Uri metrics)
    {
        ArgumentNullException.ThrowIfNull(http);
        return Parse(await http.GetStringAsync(metrics));
    }

    /// <summary>The single sample named <paramref name="name"/> with the given labels; fails when there is none or several.</summary>
    public static double Single(this IReadOnlyList<PrometheusSample> samples, string name, params (string Label, string Value)[] labels)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var matching = samples.Where(s => s.Name == name && s.Has(labels)).ToList();
        return matching.Count == 1
            ? matching[0].Value
            : throw new InvalidOperationException($"{matching.Count} samples of {name} with {string.Join(",", labels.Select(l => $"{l.Label}={l.Value}"))}, expected one.");
    }

    /// <summary>The sum of every sample named <paramref name="name"/> with the given labels (0 when there is none).</summary>
    public static double Sum(this IReadOnlyList<PrometheusSample> samples, string name, params (string Label, string Value)[] labels)
    {
        ArgumentNullException.ThrowIfNull(samples);
        return samples.Where(s => s.Name == name && s.Has(labels)).Sum(s => s.Value);
    }

    private static PrometheusSample ParseLine(string line)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var brace = line.IndexOf('{', StringComparison.Ordinal);
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        string name;
        int rest;
        if (brace >= 0 && (space < 0 || brace < space))
        {
            name = line[..brace];
            rest = ParseLabels(line, brace + 1, labels);
        }
        else
        {
            name = space < 0 ? throw new FormatException($"No value in '{line}'.") : line[..space];
            rest = space;
        }

        var fields = line[rest..].Trim().Split(' ');
        var value = fields[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            var text => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        };
        return new PrometheusSample(name, labels, value);
    }

    /// <summary>Reads <c>name="value",...}</c> from <paramref name="at"/>; returns the index after the closing brace.</summary>
    private static int ParseLabels(string line, int at, Dictionary<string, string> labels)
    {
        while (true)
        {
            while (line[at] is ' ' or ',')
            {
                at++;
            }

            if (line[at] == '}')
            {
                return at + 1;
            }

            var equals = line.IndexOf('=', at);
            var label = line[at..equals].Trim();
            at = equals + 1;
            if (line[at] != '"')
            {
                throw new FormatException($"Unquoted label value in '{line}'.");
            }

            var value = new StringBuilder();
            for (at++; line[at] != '"'; at++)
            {
                if (line[at] == '\\')
                {
                    at++;
                    value.Append(line[at] == 'n' ? '\n' : line[at]);
                }
                else
                {
                    value.Append(line[at]);
                }
            }

            labels[label] = value.ToString();
            at++;
        }
    }
}
