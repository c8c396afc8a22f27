using System.Globalization;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Forwarding;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Auth;

/// <summary>How a <see cref="RateLimitDecision"/> shows on a response: OpenAI's rate limit headers, and the 429 of a refusal.</summary>
internal static class RateLimitResponses
{
    public const string LimitRequestsHeader = "x-ratelimit-limit-requests";
    public const string RemainingRequestsHeader = "x-ratelimit-remaining-requests";
    public const string ResetRequestsHeader = "x-ratelimit-reset-requests";
    public const string LimitTokensHeader = "x-ratelimit-limit-tokens";
    public const string RemainingTokensHeader = "x-ratelimit-remaining-tokens";
    public const string ResetTokensHeader = "x-ratelimit-reset-tokens";

    /// <summary>
    /// Sets the <c>x-ratelimit-*</c> headers of each limit the key has (none for a key without limits), e.g.
    /// <c>x-ratelimit-remaining-requests: 59</c>, <c>x-ratelimit-reset-tokens: 6m0s</c>. Call before the response starts.
    /// </summary>
    public static void WriteHeaders(HttpResponse response, RateLimitDecision decision)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(decision);
        var headers = response.Headers;
        if (decision.Requests is { } requests)
        {
            headers[LimitRequestsHeader] = requests.Limit.ToString(CultureInfo.InvariantCulture);
            headers[RemainingRequestsHeader] = requests.Remaining.ToString(CultureInfo.InvariantCulture);
            headers[ResetRequestsHeader] = FormatDuration(requests.ResetAfter);
        }

        if (decision.Tokens is { } tokens)
        {
            headers[LimitTokensHeader] = tokens.Limit.ToString(CultureInfo.InvariantCulture);
            headers[RemainingTokensHeader] = tokens.Remaining.ToString(CultureInfo.InvariantCulture);
            headers[ResetTokensHeader] = FormatDuration(tokens.ResetAfter);
        }
    }

    /// <summary>
    /// Answers a refused request: the rate limit headers, <c>Retry-After</c> in whole seconds (at least 1; absent for
    /// a request too large to ever fit) and 429 with an OpenAI error (<c>rate_limit_exceeded</c>). A gRPC call gets
    /// <c>grpc-status: 8</c> (RESOURCE_EXHAUSTED) as a trailers-only response instead.
    /// </summary>
    public static Task WriteRefusalAsync(HttpContext context, RateLimitDecision decision)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(decision);
        if (decision.Allowed)
        {
            throw new ArgumentException("The decision allowed the request; there is nothing to refuse.", nameof(decision));
        }

        WriteHeaders(context.Response, decision);
        return new GatewayError(StatusCodes.Status429TooManyRequests, Message(decision), "rate_limit_exceeded", "rate_limit_exceeded")
        {
            // A request too large to ever fit gets no Retry-After: waiting would not help.
            RetryAfterSeconds = decision.RequestTooLarge ? null : RetryAfter.Seconds(decision.RetryAfter, max: int.MaxValue),
        }.WriteAsync(context);
    }

    /// <summary>A duration as OpenAI's reset headers write it: <c>20ms</c>, <c>1.5s</c>, <c>6m0s</c>.</summary>
    public static string FormatDuration(TimeSpan duration)
    {
        var ms = Math.Max(0, (long)Math.Ceiling(duration.TotalMilliseconds));
        if (ms < 1000)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ms}ms");
        }

        var minutes = ms / 60_000;
        var seconds = (ms % 60_000) / 1000.0;
        var secondsText = seconds.ToString("0.###", CultureInfo.InvariantCulture);
        return minutes > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{minutes}m{secondsText}s")
            : secondsText + "s";
    }

    private static string Message(RateLimitDecision decision)
    {
        if (decision.RequestTooLarge)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"Request too large for tokens per minute (TPM): limit {decision.Tokens?.Limit}, requested {decision.RequestedTokens}. Reduce the prompt or max_tokens.");
        }

        var (what, window, requested) = decision.RefusedBy == RateLimitDimension.Tokens
            ? ("tokens per minute (TPM)", decision.Tokens, (long)decision.RequestedTokens)
            : ("requests per minute (RPM)", decision.Requests, 1L);
        return string.Create(CultureInfo.InvariantCulture,
            $"Rate limit reached for {what}: limit {window?.Limit}, used {window?.Used}, requested {requested}. Please try again in {FormatDuration(decision.RetryAfter)}.");
    }
}
