namespace GpuFleet.Gateway.Forwarding;

/// <summary>Failover, overload and timeout settings, bound from <c>Gateway:Forwarding</c>.</summary>
internal sealed class ForwardingOptions
{
    public const string SectionName = "Gateway:Forwarding";

    /// <summary>Attempts per request, the first included; a retry happens only before the first response byte.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Retries allowed as a share of recent requests (a retry budget, so failover never multiplies an overload).</summary>
    public double RetryBudgetRatio { get; set; } = 0.2;

    /// <summary>Retries always allowed per 10 s, whatever the traffic.</summary>
    public int MinRetriesPer10Seconds { get; set; } = 10;

    /// <summary>
    /// Longest wait for the first response byte before the prompt's own prefill is counted (queueing, a short prompt):
    /// then 504. Each attempt adds the prompt's expected prefill on the chosen worker (see <see cref="FirstTokenPrefillFactor"/>).
    /// </summary>
    public TimeSpan FirstTokenTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The first-token timeout adds the prompt tokens the chosen worker must prefill (those it does not hold) over its
    /// reported prefill rate, times this: the rate is measured on recent prefills, and a long prompt shares the worker
    /// with the decode of running streams. A worker with no measured rate yet gets <see cref="FirstTokenTimeout"/> alone.
    /// </summary>
    public double FirstTokenPrefillFactor { get; set; } = 2.0;

    /// <summary>Upper bound of the first-token timeout, however long the prompt.</summary>
    public TimeSpan MaxFirstTokenTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Longest silence between two pieces of a response once it started: then the stream ends with an error event.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Longest a write to the client may stay blocked because the client does not read: then its connection is closed,
    /// which ends the request on the worker and frees its slot. A reading client, however slow its link, takes each
    /// piece of a token stream in far less; one that stopped reading would otherwise hold a slot until Kestrel's
    /// minimum data rate (240 B/s after a write's size) gave up on it, minutes later.
    /// </summary>
    public TimeSpan ClientStallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>When every worker is full, how long a request waits for room before 429 (with Retry-After).</summary>
    public TimeSpan QueueWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest request body accepted; larger is 413 from the gateway.</summary>
    public long MaxRequestBodyBytes { get; set; } = 16 * 1024 * 1024;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxAttempts is < 1 or > 10)
        {
            errors.Add($"{SectionName}:MaxAttempts must be between 1 and 10, not {MaxAttempts}.");
        }

        if (RetryBudgetRatio is < 0 or > 1 || MinRetriesPer10Seconds < 0)
        {
            errors.Add($"{SectionName}:RetryBudgetRatio must be between 0 and 1 and MinRetriesPer10Seconds not negative.");
        }

        if (FirstTokenTimeout <= TimeSpan.Zero || IdleTimeout <= TimeSpan.Zero || ClientStallTimeout <= TimeSpan.Zero || QueueWait < TimeSpan.Zero)
        {
            errors.Add($"{SectionName}: FirstTokenTimeout, IdleTimeout and ClientStallTimeout must be positive, QueueWait not negative.");
        }

        if (FirstTokenPrefillFactor is < 1 or > 100 || double.IsNaN(FirstTokenPrefillFactor))
        {
            errors.Add($"{SectionName}:FirstTokenPrefillFactor must be between 1 and 100 (below 1 a prefill at the measured rate would time out), not {FirstTokenPrefillFactor}.");
        }

        if (MaxFirstTokenTimeout < FirstTokenTimeout)
        {
            errors.Add($"{SectionName}:MaxFirstTokenTimeout ({MaxFirstTokenTimeout}) must not be below FirstTokenTimeout ({FirstTokenTimeout}).");
        }

        if (MaxRequestBodyBytes < 1024)
        {
            errors.Add($"{SectionName}:MaxRequestBodyBytes must be at least 1024, not {MaxRequestBodyBytes}.");
        }

        return errors;
    }
}
