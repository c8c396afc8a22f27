using System.Globalization;

namespace GpuFleet.Bench;

/// <summary>
/// A benchmark's command line, <c>--name value</c> pairs: every value read through one method, and every error (an unknown
/// option, a missing value, a value out of range) reported at once by <see cref="ThrowIfErrors"/>.
/// </summary>
internal sealed class BenchOptionReader
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly List<string> _errors = [];

    /// <param name="known">The option names, with their leading <c>--</c>.</param>
    public BenchOptionReader(string[] args, IReadOnlyCollection<string> known)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(known);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!known.Contains(args[i]))
            {
                _errors.Add($"Unknown option '{args[i]}'.");
            }
            else if (i + 1 >= args.Length)
            {
                _errors.Add($"{args[i]} needs a value.");
            }
            else
            {
                _values[args[i]] = args[i + 1];
            }
        }
    }

    /// <summary>The value of <paramref name="name"/> as given, or <paramref name="fallback"/>.</summary>
    public string? Text(string name, string? fallback = null) => _values.TryGetValue(name, out var text) ? text : fallback;

    /// <summary>The value of <paramref name="name"/> read by <paramref name="parse"/> (which throws <see cref="ArgumentException"/> for a bad one), or <paramref name="fallback"/>.</summary>
    public T Value<T>(string name, T fallback, Func<string, T> parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (!_values.TryGetValue(name, out var text))
        {
            return fallback;
        }

        try
        {
            return parse(text);
        }
        catch (ArgumentException ex)
        {
            _errors.Add(ex.Message);
            return fallback;
        }
    }

    public int Int(string name, int fallback, int min, int max = int.MaxValue) => Value(name, fallback, text => Int(name, text, min, max));

    public double Real(string name, double fallback, double min, double max) => Value(name, fallback, text => Real(name, text, min, max));

    /// <summary>An error found outside the reader (a file that does not exist), reported with the others.</summary>
    public void AddError(string error) => _errors.Add(error);

    public void ThrowIfErrors()
    {
        if (_errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", _errors));
        }
    }

    /// <summary>An integer from <paramref name="min"/> to <paramref name="max"/>; <see cref="ArgumentException"/> otherwise.</summary>
    public static int Int(string name, string text, int min, int max = int.MaxValue) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max ? n
            : throw new ArgumentException(max == int.MaxValue
                ? $"{name} must be an integer of at least {min}, not '{text}'."
                : $"{name} must be an integer from {min} to {max}, not '{text}'.");

    /// <summary>A number from <paramref name="min"/> to <paramref name="max"/>; <see cref="ArgumentException"/> otherwise.</summary>
    public static double Real(string name, string text, double min, double max) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max ? n
            : throw new ArgumentException($"{name} must be a number from {min} to {max}, not '{text}'.");
}
