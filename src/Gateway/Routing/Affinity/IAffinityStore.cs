namespace GpuFleet.Gateway.Routing.Affinity;

/// <summary>What one lookup returns: per candidate worker, how many leading blocks of the prompt it holds; and the session's worker.</summary>
internal sealed record AffinityLookup(IReadOnlyDictionary<string, int> HeldBlocks, string? SessionWorker)
{
    public static readonly AffinityLookup Empty = new(new Dictionary<string, int>(StringComparer.Ordinal), null);
}

/// <summary>
/// The affinity index: per model, prefix block → the workers that hold it and when that was last confirmed; and
/// session → worker. Fed by routing (at the first response byte) and corrected by what workers report they hold.
/// </summary>
internal interface IAffinityStore
{
    /// <summary>One round trip: the held-prefix depth of each candidate and the session's worker.</summary>
    Task<AffinityLookup> LookupAsync(string model, IReadOnlyList<ulong> blocks, IReadOnlyList<string> workers, string? sessionKey, CancellationToken cancellationToken);

    /// <summary>The worker now holds these blocks (it was just routed the prompt); the session sticks to it.</summary>
    Task RecordAsync(string model, IReadOnlyList<ulong> blocks, string worker, string? sessionKey, CancellationToken cancellationToken);

    /// <summary>
    /// The worker reports exactly what it holds: blocks it no longer holds are dropped (unless recorded within the grace,
    /// as its report may predate that request) and reported ones are added.
    /// </summary>
    Task ApplyHoldingsAsync(string model, string worker, IReadOnlyList<ulong> held, CancellationToken cancellationToken);
}
