using System.Globalization;

namespace GpuFleet.Bench.Soak;

/// <summary>Options of <c>soak</c>; every value has a default.</summary>
internal sealed record SoakOptions
{
    public const string Usage = "soak [--minutes 10] [--streams 64] [--workers 4] [--slots 16] [--max-tokens 64] [--sample-seconds 30] " +
        "[--redis auto|none] [--csv <file>]";

    /// <summary>How long the streams run after the warm-up.</summary>
    public double Minutes { get; init; } = 10;

    public int Streams { get; init; } = 64;

    public int Workers { get; init; } = 4;

    public int Slots { get; init; } = 16;

    public int MaxTokens { get; init; } = 64;

    public int SampleSeconds { get; init; } = 30;

    /// <summary>auto: a private redis-server when one is installed (the gateway's state there, as in production); none: in process.</summary>
    public string Redis { get; init; } = "auto";

    /// <summary>Memory over time, one row per sample and process (none: not written).</summary>
    public string? Csv { get; init; }

    public static SoakOptions Parse(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new SoakOptions();
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length)
            {
                throw new ArgumentException($"{args[i]} needs a value.");
            }

            var value = args[i + 1];
            options = args[i] switch
            {
                "--minutes" => options with { Minutes = Real(args[i], value, 0.1, 7 * 24 * 60) },
                "--streams" => options with { Streams = Int(args[i], value, 1, 4096) },
                "--workers" => options with { Workers = Int(args[i], value, 1, 32) },
                "--slots" => options with { Slots = Int(args[i], value, 1, 64) },
                "--max-tokens" => options with { MaxTokens = Int(args[i], value, 1, 4096) },
                "--sample-seconds" => options with { SampleSeconds = Int(args[i], value, 1, 3600) },
                "--redis" => options with { Redis = value is "auto" or "none" ? value : throw new ArgumentException($"--redis is auto or none, not '{value}'.") },
                "--csv" => options with { Csv = value },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
            };
        }

        return options;
    }

    private static int Int(string name, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n : throw new ArgumentException($"{name} must be an integer from {min} to {max}, not '{value}'.");

    private static double Real(string name, string value, double min, double max) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n : throw new ArgumentException($"{name} must be a number from {min} to {max}, not '{value}'.");
}
