namespace GpuFleet.Gateway.Auth;

/// <summary>Which per-minute limit refused a request.</summary>
internal enum RateLimitDimension
{
    None,
    Requests,
    Tokens,
}
