using System.Collections.Concurrent;

namespace GpuFleet.Gateway.Routing;

/// <summary>
/// Canonical prompt bytes per prompt token, per model, learned from the usage workers report (exponentially
/// weighted); it turns prompt bytes and held blocks into tokens for the time-to-first-token estimate.
/// </summary>
internal sealed class BytesPerToken(RoutingOptions options)
{
    private readonly ConcurrentDictionary<string, double> _ratios = new(StringComparer.Ordinal);

    public double For(string model) => _ratios.TryGetValue(model, out var ratio) ? ratio : options.DefaultBytesPerToken;

    public int Tokens(string model, long bytes) => (int)Math.Min(int.MaxValue, Math.Ceiling(bytes / For(model)));

    public double TokensPerBlock(string model) => options.BlockBytes / For(model);

    /// <summary>A worker reported <paramref name="promptTokens"/> for a prompt of <paramref name="promptBytes"/> canonical bytes.</summary>
    public void Observe(string model, long promptBytes, int promptTokens)
    {
        if (promptBytes < 256 || promptTokens <= 0)
        {
            return; // short prompts are dominated by the template's fixed tokens
        }

        var sample = Math.Clamp((double)promptBytes / promptTokens, 0.5, 16);
        _ratios.AddOrUpdate(model, sample, (_, previous) => (0.9 * previous) + (0.1 * sample));
    }
}
