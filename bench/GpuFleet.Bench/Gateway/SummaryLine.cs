using System.Globalization;
using System.Text;

namespace GpuFleet.Bench.Gateway;

/// <summary>
/// The one machine-read result line, <c>name: key=value key=value ...</c>, built field by field so that
/// further measurements (such as the routing micro-benchmark's <c>decision_p99_us</c>) append to it.
/// </summary>
internal sealed class SummaryLine(string name)
{
    private readonly List<(string Key, string Value)> _fields = [];

    public SummaryLine Add(string key, double value, string format) =>
        Add(key, value.ToString(format, CultureInfo.InvariantCulture));

    public SummaryLine Add(string key, string value)
    {
        _fields.Add((key, value));
        return this;
    }

    public override string ToString()
    {
        var line = new StringBuilder(name).Append(':');
        foreach (var (key, value) in _fields)
        {
            line.Append(' ').Append(key).Append('=').Append(value);
        }

        return line.ToString();
    }
}
