using GpuFleet.Contracts;
using GpuFleet.Contracts.Grpc;
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

    public string ToJson() => OpenAiErrorJson.Format(Message, Type, Param, Code);

    /// <summary>Writes the error as the response (the response must not have started); a gRPC call gets its status in trailers.</summary>
    public Task WriteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var pushback = RetryAfterSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        if (GrpcStatusResponse.IsGrpc(context.Request))
        {
            GrpcStatusResponse.Write(context, GrpcStatus(), Message, pushback);
            return Task.CompletedTask;
        }

        return OpenAiErrorJson.WriteAsync(context, Status, ToJson(), RetryAfterSeconds);
    }

    /// <summary>The gRPC status code for this error's HTTP status.</summary>
    private GrpcStatusCode GrpcStatus() => Status switch
    {
        400 => GrpcStatusCode.InvalidArgument,
        401 => GrpcStatusCode.Unauthenticated,
        413 or 429 => GrpcStatusCode.ResourceExhausted,
        504 => GrpcStatusCode.DeadlineExceeded,
        502 or 503 => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Internal,
    };
}
