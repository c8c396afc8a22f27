using System.Globalization;
using System.Text.Json;
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

    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", Message);
            json.WriteString("type", Type);
            Nullable(json, "param", Param);
            Nullable(json, "code", Code);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Writes the error as the response (the response must not have started); a gRPC call gets its status in trailers.</summary>
    public Task WriteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true)
        {
            // Trailers-only response: HTTP 200 with grpc-status and grpc-message as headers.
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/grpc";
            response.Headers["grpc-status"] = GrpcStatus().ToString(CultureInfo.InvariantCulture);
            response.Headers["grpc-message"] = Uri.EscapeDataString(Message);
            if (RetryAfterSeconds is { } pushback)
            {
                response.Headers["grpc-retry-pushback-ms"] = (pushback * 1000).ToString(CultureInfo.InvariantCulture);
            }

            return Task.CompletedTask;
        }

        response.StatusCode = Status;
        response.ContentType = "application/json";
        if (RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        return response.WriteAsync(ToJson(), context.RequestAborted);
    }

    /// <summary>The gRPC status code for this error's HTTP status.</summary>
    private int GrpcStatus() => Status switch
    {
        400 => 3,   // INVALID_ARGUMENT
        401 => 16,  // UNAUTHENTICATED
        413 or 429 => 8, // RESOURCE_EXHAUSTED
        504 => 4,   // DEADLINE_EXCEEDED
        502 or 503 => 14, // UNAVAILABLE
        _ => 13,    // INTERNAL
    };

    private static void Nullable(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
