using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>
/// One client call in flight: the HTTP/2 exchange, its deadline timer and the caller's token. Disposing it before
/// the response ended resets the stream (RST_STREAM CANCEL), which is how a call is cancelled.
/// </summary>
internal sealed class GrpcClientCall : IDisposable
{
    private readonly int _maxReceiveMessageSize;
    private readonly CancellationToken _callerToken;
    private readonly CancellationTokenSource? _deadlineSource;
    private readonly CancellationTokenSource _callSource;
    private HttpResponseMessage? _response;
    private Stream? _body;
    private bool _ended;

    public GrpcClientCall(int maxReceiveMessageSize, TimeSpan? timeout, TimeProvider timeProvider, CancellationToken callerToken)
    {
        _maxReceiveMessageSize = maxReceiveMessageSize;
        _callerToken = callerToken;
        _deadlineSource = timeout is { } t ? new CancellationTokenSource(t, timeProvider) : null;
        _callSource = _deadlineSource is null
            ? CancellationTokenSource.CreateLinkedTokenSource(callerToken)
            : CancellationTokenSource.CreateLinkedTokenSource(callerToken, _deadlineSource.Token);
    }

    public async Task SendAsync(HttpClient client, HttpRequestMessage request)
    {
        try
        {
            _response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _callSource.Token).ConfigureAwait(false);
            if (_response.StatusCode != HttpStatusCode.OK)
            {
                throw new GrpcException(
                    GrpcProtocol.FromHttpStatus(_response.StatusCode),
                    $"Bad gRPC response: HTTP status {(int)_response.StatusCode}.");
            }

            // Trailers-only: the whole status came in the headers, and there is no body to read.
            if (TryGetStatus(_response.Headers, out var status, out var message))
            {
                _ended = true;
                ThrowIfNotOk(status, message);
                return;
            }

            var contentType = _response.Content.Headers.ContentType?.ToString();
            if (!GrpcProtocol.IsGrpcContentType(contentType))
            {
                throw new GrpcException(GrpcStatusCode.Internal, $"Bad gRPC response: content-type '{contentType}'.");
            }

            _body = await _response.Content.ReadAsStreamAsync(_callSource.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Translate(ex);
        }
        finally
        {
            request.Dispose();
        }
    }

    /// <summary>The next message, or null once the server ended the call with OK; a non-OK status throws.</summary>
    public async ValueTask<T?> ReadNextAsync<T>(MessageParser<T> parser)
        where T : class, IMessage<T>
    {
        if (_ended)
        {
            return null;
        }

        try
        {
            var message = await GrpcMessageFraming.ReadMessageAsync(_body!, parser, _maxReceiveMessageSize, _callSource.Token).ConfigureAwait(false);
            if (message is not null)
            {
                return message;
            }

            // The body ended: HttpClient has the trailers now.
            _ended = true;
            if (!TryGetStatus(_response!.TrailingHeaders, out var status, out var statusMessage))
            {
                throw new GrpcException(GrpcStatusCode.Internal, "The response ended without a grpc-status.");
            }

            ThrowIfNotOk(status, statusMessage);
            return null;
        }
        catch (Exception ex)
        {
            _ended = true;
            throw Translate(ex);
        }
    }

    public void Dispose()
    {
        // Disposing an unfinished response resets the stream; a finished one just returns the connection.
        _body?.Dispose();
        _response?.Dispose();
        _callSource.Dispose();
        _deadlineSource?.Dispose();
    }

    private static bool TryGetStatus(HttpHeaders headers, out GrpcStatusCode status, out string message)
    {
        status = GrpcStatusCode.Unknown;
        message = string.Empty;
        if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var statusValues))
        {
            return false;
        }

        status = GrpcProtocol.ParseStatus(statusValues.FirstOrDefault() ?? string.Empty);
        if (headers.TryGetValues(GrpcProtocol.MessageHeader, out var messageValues))
        {
            message = GrpcProtocol.DecodeMessage(string.Join(",", messageValues));
        }

        return true;
    }

    private static void ThrowIfNotOk(GrpcStatusCode status, string message)
    {
        if (status != GrpcStatusCode.OK)
        {
            throw new GrpcException(status, message);
        }
    }

    /// <summary>Maps what went wrong to what the caller sees: its own cancellation, the deadline, or a gRPC status.</summary>
    private Exception Translate(Exception ex)
    {
        if (_callerToken.IsCancellationRequested)
        {
            return new OperationCanceledException("The gRPC call was cancelled by the caller.", ex, _callerToken);
        }

        if (_deadlineSource?.IsCancellationRequested == true && ex is not GrpcException)
        {
            return new GrpcException(GrpcStatusCode.DeadlineExceeded, "Deadline exceeded.", ex);
        }

        return ex switch
        {
            GrpcException => ex,
            HttpProtocolException protocol => FromProtocolError(protocol),
            HttpRequestException { InnerException: HttpProtocolException protocol } => FromProtocolError(protocol),
            HttpRequestException request => new GrpcException(GrpcStatusCode.Unavailable, "Error connecting to the gRPC server: " + request.Message, ex),
            IOException => new GrpcException(GrpcStatusCode.Unavailable, "The connection to the gRPC server was lost: " + ex.Message, ex),
            OperationCanceledException => new GrpcException(GrpcStatusCode.Cancelled, "The gRPC call was cancelled.", ex),
            _ => ex,
        };
    }

    private static GrpcException FromProtocolError(HttpProtocolException ex) =>
        new(GrpcProtocol.FromHttp2ErrorCode(ex.ErrorCode), $"The HTTP/2 stream was reset (error code {ex.ErrorCode}).", ex);
}
