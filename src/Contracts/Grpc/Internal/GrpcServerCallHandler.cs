using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>
/// Serves one gRPC method whose client sends a single message (unary and server streaming) on Kestrel: checks the
/// request, reads the message, runs the handler under the call's deadline and cancellation, and ends the call with
/// grpc-status trailers (or a trailers-only response when nothing was written).
/// </summary>
internal sealed class GrpcServerCallHandler<TRequest>
    where TRequest : IMessage<TRequest>
{
    private readonly string _method;
    private readonly MessageParser<TRequest> _parser;
    private readonly Func<TRequest, GrpcServerCallContext, Task> _invoke;
    private readonly GrpcServerOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;

    public GrpcServerCallHandler(
        string method,
        MessageParser<TRequest> parser,
        Func<TRequest, GrpcServerCallContext, Task> invoke,
        GrpcServerOptions options,
        TimeProvider timeProvider,
        ILogger logger)
    {
        _method = method;
        _parser = parser;
        _invoke = invoke;
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    public async Task HandleAsync(HttpContext http)
    {
        if (!GrpcServerResponses.TryAccept(http, _method, _logger, out var timeout))
        {
            return;
        }

        GrpcServerResponses.PrepareMessageResponse(http.Response);

        // gRPC enforces its own per-message limit; Kestrel's whole-body limit (30 MB) would cut a stream short.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            bodySize.MaxRequestBodySize = null;
        }

        DateTime? deadline = timeout is { } t ? _timeProvider.GetUtcNow().UtcDateTime + t : null;
        using var deadlineSource = timeout is { } delay ? new CancellationTokenSource(delay, _timeProvider) : null;
        using var callSource = deadlineSource is null
            ? CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted)
            : CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, deadlineSource.Token);
        var context = new GrpcServerCallContext(http, _method, deadline, callSource.Token);

        GrpcStatusCode status;
        string? message = null;
        try
        {
            var request = await GrpcMessageFraming.ReadSingleMessageAsync(
                http.Request.BodyReader, _parser, _options.MaxReceiveMessageSize, context.CancellationToken).ConfigureAwait(false);
            await _invoke(request, context).ConfigureAwait(false);
            status = GrpcStatusCode.OK;
        }
        catch (Exception) when (http.RequestAborted.IsCancellationRequested)
        {
            // The stream is reset: nothing more can reach the client, whatever the handler threw on its way out.
            GrpcServerLog.CallCancelled(_logger, _method);
            return;
        }
        catch (OperationCanceledException) when (deadlineSource?.IsCancellationRequested == true)
        {
            status = GrpcStatusCode.DeadlineExceeded;
            message = "Deadline exceeded.";
        }
        catch (GrpcException ex)
        {
            status = ex.StatusCode;
            message = ex.Message;
        }
        catch (Exception ex)
        {
            // The details stay in the log: a stack trace or an exception message is no business of the client's.
            GrpcServerLog.HandlerFailed(_logger, _method, ex);
            status = GrpcStatusCode.Internal;
            message = "Exception was thrown by handler.";
        }

        if (status == GrpcStatusCode.OK && deadlineSource?.IsCancellationRequested == true)
        {
            // The handler finished anyway, but too late: the client has been told (or will decide) it timed out.
            status = GrpcStatusCode.DeadlineExceeded;
            message = "Deadline exceeded.";
        }

        if (status == GrpcStatusCode.DeadlineExceeded && timeout is { } exceeded)
        {
            GrpcServerLog.DeadlineExceeded(_logger, _method, exceeded);
        }
        else if (status != GrpcStatusCode.OK)
        {
            GrpcServerLog.CallFailed(_logger, _method, status);
        }

        try
        {
            GrpcServerResponses.WriteStatus(http, status, message, context.ResponseTrailers);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException)
        {
            GrpcServerLog.StatusNotSent(_logger, _method, ex);
        }
    }
}
