using GpuFleet.Contracts;
using GpuFleet.Worker.Engine;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>
/// A client-facing failure in the OpenAI error shape <c>{"error":{"message","type","param","code"}}</c>,
/// with its HTTP status. Thrown by request parsing and turned into a response by the endpoints.
/// </summary>
internal sealed class OpenAiException : Exception
{
    public OpenAiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
        : base(message)
    {
        Status = status;
        Type = type;
        Param = param;
        Code = code;
    }

    public OpenAiException()
        : this(500, "Internal error.", "server_error")
    {
    }

    public OpenAiException(string message)
        : this(400, message)
    {
    }

    public OpenAiException(string message, Exception innerException)
        : base(message, innerException)
    {
        Status = 400;
        Type = "invalid_request_error";
    }

    public int Status { get; }

    public string Type { get; }

    public string? Param { get; }

    public string? Code { get; }

    /// <summary>Seconds the client should wait before retrying (429/503), when known.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static OpenAiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, "invalid_request_error", param, code);

    /// <summary>True when <paramref name="completion"/> did not end normally and the client must see an error.</summary>
    public static bool IsFailure(CompletionEvent completion) => completion.Reason is FinishReason.Error or FinishReason.Interrupted;

    /// <summary>
    /// The error for a failed completion: the worker stopping mid-request is a 503 with Retry-After (another
    /// worker can serve it), a model failure a 500; after the first byte either becomes an error event.
    /// </summary>
    public static OpenAiException Failed(CompletionEvent completion) => completion.Reason == FinishReason.Interrupted
        ? new OpenAiException(503, completion.Error ?? "The worker stopped.", "service_unavailable", null, "worker_stopped") { RetryAfterSeconds = 1 }
        : GenerationFailed(completion.Error);

    /// <summary>The model failed while generating (a 500 before the first byte, an error event after it).</summary>
    public static OpenAiException GenerationFailed(string? error) =>
        new(500, error ?? "The model failed.", "server_error", null, "generation_failed");

    /// <summary>The JSON body of this error (also used as an SSE error event).</summary>
    public string ToJson() => OpenAiErrorJson.Format(Message, Type, Param, Code);

    public Task WriteAsync(HttpContext context) => OpenAiErrorJson.WriteAsync(context, Status, ToJson(), RetryAfterSeconds);
}
