namespace GpuFleet.Gateway.Auth;

/// <summary>
/// The generic cell rate algorithm (GCRA) of one per-minute limit, shared by the Redis script and the in-process
/// fallback: a bucket of capacity <c>limit</c> that drains continuously at <c>limit</c> per minute, kept as one
/// number, the theoretical arrival time (TAT): when the bucket will be empty. A request of cost <c>c</c> fits when the
/// bucket, with <c>c</c> more, drains within a minute. An idle key may spend its whole minute in one burst; a waiting
/// one gets capacity back a little at a time, so the honest retry time is never more than a minute.
/// </summary>
/// <remarks>
/// Times are Unix microseconds. Stored TATs are rounded down to whole microseconds, which errs by under a microsecond
/// per request in the caller's favour and keeps "limit requests at once" exact. The Lua script does the same double
/// arithmetic in the same order, so both decide alike on the same numbers.
/// </remarks>
internal static class Gcra
{
    public const long WindowUs = 60_000_000;

    /// <summary>Microseconds one unit (a request, a token) occupies the bucket.</summary>
    public static double Interval(long limit) => (double)WindowUs / limit;

    /// <summary>Whether <paramref name="cost"/> more fits, given the stored TAT (0 = none).</summary>
    public static bool Fits(long limit, long tat, long cost, long now) =>
        Math.Max(tat, now) + cost * Interval(limit) - now <= WindowUs;

    /// <summary>The TAT to store once <paramref name="cost"/> is counted.</summary>
    public static long Add(long limit, long tat, long cost, long now) =>
        (long)Math.Floor(Math.Max(tat, now) + cost * Interval(limit));

    /// <summary>
    /// The decision for TATs read before the request (and, when <paramref name="allowed"/>, counted after it). Null
    /// limits are skipped. A cost above the tokens limit is a refusal no waiting fixes (<see cref="RateLimitDecision.RequestTooLarge"/>).
    /// </summary>
    public static RateLimitDecision Decide(bool allowed, int? rpm, long requestsTat, int? tpm, long tokensTat, int cost, long now)
    {
        var retryUs = 0.0;
        var refusedBy = RateLimitDimension.None;
        RateLimitWindow? requests = null;
        RateLimitWindow? tokens = null;
        if (rpm is { } requestLimit)
        {
            requests = Window(requestLimit, requestsTat, allowed ? 1 : 0, now);
            if (!allowed && !Fits(requestLimit, requestsTat, 1, now))
            {
                refusedBy = RateLimitDimension.Requests;
                retryUs = Wait(requestLimit, requestsTat, 1, now);
            }
        }

        if (tpm is { } tokenLimit)
        {
            tokens = Window(tokenLimit, tokensTat, allowed ? cost : 0, now);
            if (!allowed && cost > tokenLimit)
            {
                return new RateLimitDecision(false, TimeSpan.Zero, RateLimitDimension.Tokens, true, cost, requests, tokens);
            }

            if (!allowed && !Fits(tokenLimit, tokensTat, cost, now))
            {
                refusedBy = refusedBy == RateLimitDimension.None ? RateLimitDimension.Tokens : refusedBy;
                retryUs = Math.Max(retryUs, Wait(tokenLimit, tokensTat, cost, now));
            }
        }

        if (!allowed && refusedBy == RateLimitDimension.None)
        {
            // Not reached while the refusal was decided on these same numbers (the script returns what it read);
            // should the two ever disagree, one request's interval is a safe wait.
            refusedBy = rpm is not null ? RateLimitDimension.Requests : RateLimitDimension.Tokens;
            retryUs = Interval(rpm ?? tpm ?? 1);
        }

        var retry = allowed ? TimeSpan.Zero : TimeSpan.FromMicroseconds(Math.Max(1000, Math.Ceiling(retryUs)));
        return new RateLimitDecision(allowed, retry, refusedBy, false, cost, requests, tokens);
    }

    // Until the bucket has drained enough for the cost: at most a minute for a cost within the limit.
    private static double Wait(long limit, long tat, long cost, long now) => Math.Max(tat, now) + cost * Interval(limit) - now - WindowUs;

    private static RateLimitWindow Window(long limit, long tatBefore, long counted, long now)
    {
        var interval = Interval(limit);
        var levelBefore = Math.Max(tatBefore, now) - now;
        var levelAfter = (counted > 0 ? Add(limit, tatBefore, counted, now) : Math.Max(tatBefore, now)) - now;

        // The tolerance absorbs the division's rounding, so a bucket holding exactly 3 units does not read as 4.
        var used = (long)Math.Ceiling((levelBefore / interval) - 1e-9);
        var remaining = Math.Max(0, (long)Math.Floor((WindowUs - levelAfter) / interval));
        return new RateLimitWindow(limit, used, remaining, TimeSpan.FromMicroseconds(levelAfter));
    }
}
