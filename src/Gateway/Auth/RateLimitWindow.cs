namespace GpuFleet.Gateway.Auth;

/// <summary>
/// One limit's state as the OpenAI <c>x-ratelimit-*</c> headers show it.
/// </summary>
/// <param name="Limit">The per-minute limit.</param>
/// <param name="Used">What the sliding minute held before this request (what a refusal was measured against).</param>
/// <param name="Remaining">What is left after this request (unchanged by a refusal).</param>
/// <param name="ResetAfter">Until the whole limit is available again, if nothing more is used.</param>
internal readonly record struct RateLimitWindow(long Limit, long Used, long Remaining, TimeSpan ResetAfter);
