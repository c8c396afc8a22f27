namespace GpuFleet.Gateway.Auth;

/// <summary>
/// Who a request's API key belongs to and its per-minute limits; never the secret or its hash, so it may be
/// logged, put on responses and used to name shared counters.
/// </summary>
/// <param name="Name">The key's name from the keys file (letters, digits, <c>.</c>, <c>_</c>, <c>@</c>, <c>-</c>).</param>
/// <param name="RequestsPerMinute">Requests per minute; null = unlimited.</param>
/// <param name="TokensPerMinute">Tokens (prompt + completion) per minute; null = unlimited.</param>
internal sealed record ApiKeyIdentity(string Name, int? RequestsPerMinute, int? TokensPerMinute)
{
    /// <summary>False when neither limit is set: the limiter is skipped entirely.</summary>
    public bool HasLimits => RequestsPerMinute is not null || TokensPerMinute is not null;
}
