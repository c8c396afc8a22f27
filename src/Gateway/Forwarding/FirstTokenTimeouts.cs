using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// The first-token timeout of one attempt: <see cref="ForwardingOptions.FirstTokenTimeout"/> plus the prompt's expected
/// prefill on the chosen worker (tokens it does not hold over its reported prefill rate, times
/// <see cref="ForwardingOptions.FirstTokenPrefillFactor"/>), at most <see cref="ForwardingOptions.MaxFirstTokenTimeout"/>.
/// </summary>
internal sealed class FirstTokenTimeouts(ForwardingOptions options, WorkerLoadBoard board, WorkerTraffic traffic)
{
    public TimeSpan For(string destination, int prefillTokens) =>
        Compute(options, prefillTokens, traffic.KnownPrefillRate(destination, board.Get(destination)?.Status?.Engine?.PrefillTokensPerSecond ?? 0));

    /// <summary>The timeout for <paramref name="prefillTokens"/> at <paramref name="prefillRate"/> tokens/s (null: not measured yet).</summary>
    internal static TimeSpan Compute(ForwardingOptions options, int prefillTokens, double? prefillRate)
    {
        if (prefillRate is not > 0 || prefillTokens <= 0)
        {
            return options.FirstTokenTimeout;
        }

        var seconds = options.FirstTokenTimeout.TotalSeconds + (prefillTokens / prefillRate.Value * options.FirstTokenPrefillFactor);
        return seconds >= options.MaxFirstTokenTimeout.TotalSeconds ? options.MaxFirstTokenTimeout : TimeSpan.FromSeconds(seconds);
    }
}
