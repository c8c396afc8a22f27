using System.Globalization;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Observability;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>An error the gateway answers itself, in the OpenAI shape <c>{"error":{"message","type","param","code"}}</c>.</summary>
internal sealed class GatewayError(int status, string message, string type, string? code, string? param = null) : Exception(message)
{
    public int Status { get; } = status;

    public string Type { get; } = type;

    public string? Code { get; } = code;

    public string? Param { get; } = param;

    public int? RetryAfterSeconds { get; init; }

    public static GatewayError BadRequest(string message, string? param = null, string code = "invalid_value") =>
        new(400, message, "invalid_request_error", code, param);

    /// <summary>The 503 when no worker is available at all (every one down, draining or loading).</summary>
    public static GatewayError NoWorkerAvailable() =>
        new(503, "No worker is available (all are down, draining or loading); retry shortly.", "service_unavailable", "no_worker_available") { RetryAfterSeconds = 2 };

    /// <summary>The 503 of a request whose worker answered unavailable when no more failover is allowed: it says what happened.</summary>
    public static GatewayError RetryBudgetSpent() =>
        new(503, "The worker chosen was unavailable (draining or loading), and too many requests were retried elsewhere in the last 10 s to retry this one " +
            "(the retry budget keeps failover from multiplying an outage); retry shortly.", "service_unavailable", "retry_budget_exhausted") { RetryAfterSeconds = 1 };

    /// <summary>
    /// The 503 of a request whose worker could not be reached (gone, crashed, restarting) when no other could be tried:
    /// none was left, or the request had had its <paramref name="attempts"/> already.
    /// </summary>
    public static GatewayError Unreachable(int attempts) =>
        new(503, attempts > 1
            ? string.Create(CultureInfo.InvariantCulture, $"The {attempts} workers this request was sent to could not be reached or were lost before answering, and no further worker may be tried; retry shortly.")
            : "The worker could not be reached and no other worker is available; retry shortly.", "service_unavailable", "worker_unreachable") { RetryAfterSeconds = 2 };

    public string ToJson() => OpenAiErrorJson.Format(Message, Type, Param, Code);

    /// <summary>Writes the error as the response (the response must not have started); a gRPC call gets its status in trailers.</summary>
    public Task WriteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Features.Get<RequestObservation>()?.Refused(Code);
        if (GrpcRefusal.IsGrpc(context.Request))
        {
            GrpcRefusal.Write(context, GrpcRefusal.FromHttpStatus(Status), Message, RetryAfterSeconds);
            return Task.CompletedTask;
        }

        return OpenAiErrorJson.WriteAsync(context, Status, ToJson(), RetryAfterSeconds);
    }
}
