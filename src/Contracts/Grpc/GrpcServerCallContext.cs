using Microsoft.AspNetCore.Http;

namespace GpuFleet.Contracts.Grpc;

/// <summary>What a gRPC server handler knows about its call: cancellation, deadline, headers, and the trailers it adds.</summary>
public sealed class GrpcServerCallContext
{
    internal GrpcServerCallContext(HttpContext httpContext, string method, DateTime? deadline, CancellationToken cancellationToken)
    {
        HttpContext = httpContext;
        Method = method;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>The full method name, "/package.Service/Method".</summary>
    public string Method { get; }

    /// <summary>The call's deadline in UTC, from the client's grpc-timeout; null when the client set none.</summary>
    public DateTime? Deadline { get; }

    /// <summary>Fires when the client cancels (RST_STREAM, disconnect) or the deadline passes; pass it to everything the handler awaits.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The request headers (custom metadata included; gRPC reserved ones too).</summary>
    public IHeaderDictionary RequestHeaders => HttpContext.Request.Headers;

    /// <summary>Response headers; only what is set before the first message is written reaches the client.</summary>
    public IHeaderDictionary ResponseHeaders => HttpContext.Response.Headers;

    /// <summary>Extra trailers sent with grpc-status when the call ends (or as headers in a trailers-only response).</summary>
    public IHeaderDictionary ResponseTrailers { get; } = new HeaderDictionary();

    /// <summary>The underlying HTTP/2 request, for what this context does not surface (connection info, features).</summary>
    public HttpContext HttpContext { get; }
}
