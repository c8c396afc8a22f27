using System.Net;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using GpuFleet.Contracts.Grpc.Internal;

namespace GpuFleet.Contracts.Grpc;

/// <summary>
/// A gRPC client over <see cref="HttpClient"/> speaking cleartext HTTP/2 (prior knowledge, no upgrade): unary and
/// server-streaming calls with deadlines and cancellation. Non-OK statuses surface as <see cref="GrpcException"/>;
/// the caller's own cancellation surfaces as <see cref="OperationCanceledException"/>. Thread-safe; share one per target.
/// </summary>
public sealed class GrpcCallInvoker : IDisposable
{
    private readonly HttpClient _httpClient;
    private readonly bool _ownsHttpClient;
    private readonly GrpcClientOptions _options;
    private readonly TimeProvider _timeProvider;

    /// <summary>
    /// Uses <paramref name="httpClient"/>, whose BaseAddress is the server (e.g. http://127.0.0.1:5001/). Set its
    /// Timeout to infinite: deadlines are per call, and HttpClient's timeout would cut long calls short.
    /// </summary>
    public GrpcCallInvoker(HttpClient httpClient, GrpcClientOptions? options = null, TimeProvider? timeProvider = null)
        : this(httpClient, ownsHttpClient: false, options, timeProvider)
    {
    }

    private GrpcCallInvoker(HttpClient httpClient, bool ownsHttpClient, GrpcClientOptions? options, TimeProvider? timeProvider)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        if (httpClient.BaseAddress is null)
        {
            throw new ArgumentException("The HttpClient needs a BaseAddress: the gRPC server's address.", nameof(httpClient));
        }

        _options = options ?? new GrpcClientOptions();
        if (_options.MaxReceiveMessageSize <= 0 || _options.MaxSendMessageSize is <= 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(options),
                $"{nameof(GrpcClientOptions)}: message size limits must be positive (receive {_options.MaxReceiveMessageSize}, send {_options.MaxSendMessageSize}).");
        }

        _httpClient = httpClient;
        _ownsHttpClient = ownsHttpClient;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The server's base address.</summary>
    public Uri Address => _httpClient.BaseAddress!;

    /// <summary>Creates an invoker with its own connection pool to <paramref name="address"/> (disposed with the invoker).</summary>
    public static GrpcCallInvoker Create(Uri address, GrpcClientOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        var handler = new SocketsHttpHandler
        {
            // A server caps concurrent streams per connection (Kestrel: 100); past that, open another connection
            // rather than queue calls behind long generations.
            EnableMultipleHttp2Connections = true,

            // A dead worker must fail fast (UNAVAILABLE) so the caller can route elsewhere.
            ConnectTimeout = TimeSpan.FromSeconds(10),

            // Pings notice a half-open connection under a long, quiet stream (a slow prefill). Kestrel (our workers)
            // accepts any rate; grpc-go and C-core servers punish pings under 5 min apart on a quiet stream
            // (GOAWAY too_many_pings), so a client of those would need their enforcement relaxed.
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        };
        var client = new HttpClient(handler, disposeHandler: true)
        {
            BaseAddress = address,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        return new GrpcCallInvoker(client, ownsHttpClient: true, options, timeProvider);
    }

    /// <summary>Makes a unary call to <paramref name="fullMethod"/> ("/package.Service/Method").</summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(
        string fullMethod,
        TRequest request,
        MessageParser<TResponse> responseParser,
        DateTime? deadline = null,
        CancellationToken cancellationToken = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(responseParser);
        using var call = await StartAsync(fullMethod, request, deadline, cancellationToken).ConfigureAwait(false);
        var response = await call.ReadNextAsync(responseParser).ConfigureAwait(false)
            ?? throw new GrpcException(GrpcStatusCode.Internal, "The server ended a unary call with status OK but no response message.");
        if (await call.ReadNextAsync(responseParser).ConfigureAwait(false) is not null)
        {
            throw new GrpcException(GrpcStatusCode.Internal, "The server sent more than one response message for a unary call.");
        }

        return response;
    }

    /// <summary>
    /// Makes a server-streaming call; the call starts when enumeration starts. Stopping the enumeration early (or
    /// cancelling) resets the HTTP/2 stream, which the server sees as a cancelled call.
    /// </summary>
    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(
        string fullMethod,
        TRequest request,
        MessageParser<TResponse> responseParser,
        DateTime? deadline = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        ArgumentNullException.ThrowIfNull(responseParser);
        using var call = await StartAsync(fullMethod, request, deadline, cancellationToken).ConfigureAwait(false);
        while (await call.ReadNextAsync(responseParser).ConfigureAwait(false) is { } message)
        {
            yield return message;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHttpClient)
        {
            _httpClient.Dispose();
        }
    }

    private async Task<GrpcClientCall> StartAsync<TRequest>(string fullMethod, TRequest request, DateTime? deadline, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
    {
        ArgumentException.ThrowIfNullOrEmpty(fullMethod);
        ArgumentNullException.ThrowIfNull(request);
        if (fullMethod[0] != '/')
        {
            throw new ArgumentException($"A gRPC method name has the form \"/package.Service/Method\"; got \"{fullMethod}\".", nameof(fullMethod));
        }

        cancellationToken.ThrowIfCancellationRequested();
        TimeSpan? timeout = null;
        if (deadline is { } due)
        {
            var remaining = due.ToUniversalTime() - _timeProvider.GetUtcNow().UtcDateTime;
            if (remaining <= TimeSpan.Zero)
            {
                // Already late: sending would only waste the server's time (grpc-dotnet does the same).
                throw new GrpcException(GrpcStatusCode.DeadlineExceeded, "Deadline exceeded.");
            }

            timeout = remaining <= GrpcProtocol.MaxTimerDelay ? remaining : null;
        }

        var body = new ByteArrayContent(GrpcMessageFraming.ToFramedArray(request, _options.MaxSendMessageSize));
        body.Headers.TryAddWithoutValidation("Content-Type", GrpcProtocol.ContentType);
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(Address, fullMethod))
        {
            Content = body,
            Version = HttpVersion.Version20,

            // Exact: cleartext HTTP/2 by prior knowledge; never fall back to HTTP/1.1, which cannot carry trailers.
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        message.Headers.TryAddWithoutValidation("te", "trailers");
        message.Headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.IdentityEncoding);
        if (timeout is { } t)
        {
            message.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(t));
        }

        var call = new GrpcClientCall(_options.MaxReceiveMessageSize, timeout, _timeProvider, cancellationToken);
        try
        {
            await call.SendAsync(_httpClient, message).ConfigureAwait(false);
            return call;
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }
}
