using GpuFleet.Contracts;
using GpuFleet.Gateway.Observability;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>An error the gateway answers itself, in the OpenAI shape <c>{"error":{"message","type","param","code"}}</c>.</summary>
public sealed class GatewayError(int status, string message, string type, string? code, string? param = null) : Exception(message)
{
    public int Status { get; } = status;

    public string Type { get; } = type;

    public string? Code { get; } = code;

    public string? Param { get; } = param;

    public int? RetryAfterSeconds { get; init; }

    public static GatewayError BadRequest(string message, string? param = null, string code = "invalid_value") =>
        new(400, message, "invalid_request_error", code, param);

    /// <summary>The 503 of a request whose worker failed (<paramref name="cause"/>) when no more failover is allowed: it says what happened.</summary>
    public static GatewayError RetryBudgetSpent(RetryCause cause)
    {
        var what = cause == RetryCause.WorkerUnavailable
            ? "The worker chosen was unavailable (draining or loading)"
            : "The connection to the worker chosen failed before it answered";
        return new GatewayError(503, what + ", and too many requests were retried elsewhere in the last 10 s to retry this one (the retry budget keeps failover from multiplying an outage); retry shortly.",
            "service_unavailable", "retry_budget_exhausted") { RetryAfterSeconds = 1 };
    }

    public string ToJson() => OpenAiErrorJson.Format(Message, Type, Param, Code);

    /// <summary>Writes the error as the response (the response must not have started); a gRPC call gets its status in trailers.</summary>
    public Task WriteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Features.Get<RequestObservation>()?.Refused(Code);
        var pushback = RetryAfterSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        if (GrpcRefusal.IsGrpc(context.Request))
        {
            GrpcRefusal.Write(context, GrpcRefusal.FromHttpStatus(Status), Message, pushback);
            return Task.CompletedTask;
        }

        return OpenAiErrorJson.WriteAsync(context, Status, ToJson(), RetryAfterSeconds);
    }
}
