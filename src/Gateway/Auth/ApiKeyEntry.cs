namespace GpuFleet.Gateway.Auth;

/// <summary>One key of the keys file: its name, the SHA-256 of its secret, its limits and when it was made.</summary>
internal sealed record ApiKeyEntry(string Name, string Sha256, int? RequestsPerMinute, int? TokensPerMinute, DateTimeOffset? Created)
{
    public ApiKeyIdentity ToIdentity() => new(Name, RequestsPerMinute, TokensPerMinute);
}
