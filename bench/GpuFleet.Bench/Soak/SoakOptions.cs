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
        var read = new BenchOptionReader(args, ["--minutes", "--streams", "--workers", "--slots", "--max-tokens", "--sample-seconds", "--redis", "--csv"]);
        var defaults = new SoakOptions();
        var options = new SoakOptions
        {
            Minutes = read.Real("--minutes", defaults.Minutes, 0.1, 7 * 24 * 60),
            Streams = read.Int("--streams", defaults.Streams, 1, 4096),
            Workers = read.Int("--workers", defaults.Workers, 1, 32),
            Slots = read.Int("--slots", defaults.Slots, 1, 64),
            MaxTokens = read.Int("--max-tokens", defaults.MaxTokens, 1, 4096),
            SampleSeconds = read.Int("--sample-seconds", defaults.SampleSeconds, 1, 3600),
            Redis = read.Value("--redis", defaults.Redis, value => value is "auto" or "none" ? value : throw new ArgumentException($"--redis is auto or none, not '{value}'.")),
            Csv = read.Text("--csv"),
        };
        read.ThrowIfErrors();
        return options;
    }
}
