using System.Globalization;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Observability;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// The gateway's part of YARP's proxy pipeline, ahead of load balancing. For an OpenAI generation request: reads the
/// body (bounded: 413), inspects it (bad input: 400 from the gateway, no worker sees it), looks up affinity (one
/// round trip), waits a bounded time when every worker is full (then 429 with Retry-After), and forwards with
/// failover: a connection failure or a worker's 429/503 moves the request to another worker while nothing has been
/// sent to the client, within a retry budget. After the first byte, a broken or silent stream ends with an OpenAI
/// error event and <c>[DONE]</c>, never a clean-looking end or a hang.
/// </summary>
internal sealed class GatewayForwardingMiddleware(
    RequestDelegate next,
    RequestInspector inspector,
    AffinityIndex affinity,
    WorkerLoadBoard board,
    WorkerTraffic traffic,
    BytesPerToken calibration,
    RetryBudget retryBudget,
    ResponseWatchdog watchdog,
    ForwardingOptions options,
    IEnumerable<IRequestAdmission> admissions,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<GatewayForwardingMiddleware> logger)
{
    private readonly IRequestAdmission[] _admissions = [.. admissions];

    private static readonly TimeSpan FullPoll = TimeSpan.FromMilliseconds(50);

    /// <summary>The gRPC method whose prompt the gateway reads for affinity, as OpenAI generation requests.</summary>
    private const string GenerateMethodPath = "/gpufleet.v1.Inference/Generate";

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var proxy = context.Features.Get<IReverseProxyFeature>()!;
        context.Request.Headers.Remove(GpuFleetHeaders.PrefixBlocks);
        RoutingState routing;
        try
        {
            if (await InspectAsync(context, proxy) is not { } state)
            {
                return; // refused by an admission, which wrote the response
            }

            routing = state;
            using (metrics.TimeCapacityWait())
            {
                await WaitForRoomAsync(context, proxy);
            }
        }
        catch (GatewayError error) when (!context.Response.HasStarted)
        {
            await error.WriteAsync(context);
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        await ForwardAsync(context, proxy, routing);
        if (routing.Request is { } inspected && routing.Usage is { } usage)
        {
            calibration.Observe(inspected.Model, inspected.PromptBytes, usage.PromptTokens);
            metrics.ObserveUsage(routing.Destination ?? "?", usage);
        }

        metrics.ObserveRequest(routing.Destination ?? "none", routing.Reason ?? "none", context.Response.StatusCode);
        foreach (var admission in _admissions)
        {
            await admission.CompleteAsync(context, routing.Usage);
        }
    }

    /// <summary>
    /// For a generation request (OpenAI chat or completion, gRPC Generate): reads the body (bounded: 413), inspects it
    /// (bad OpenAI input: 400 from the gateway), marks the prompt's blocks for the worker, runs the admissions (per-key
    /// limits) and looks up affinity. Any other request passes with an empty state. Null when an admission refused.
    /// </summary>
    private async Task<RoutingState?> InspectAsync(HttpContext context, IReverseProxyFeature proxy)
    {
        var chat = IsPost(context, "/v1/chat/completions");
        var generate = !chat && IsPost(context, GenerateMethodPath) && GrpcRefusal.IsGrpc(context.Request);
        if (!generate && !chat && !IsPost(context, "/v1/completions"))
        {
            var plain = new RoutingState();
            context.Features.Set(plain);
            return plain;
        }

        var body = await ReadBodyAsync(context);
        var session = context.Request.Headers[GpuFleetHeaders.SessionId].ToString();
        var request = generate ? inspector.InspectGenerate(body, session) : inspector.Inspect(body, chat, session);
        var routing = new RoutingState { Request = request, Body = body, PromptTokens = request is null ? 0 : calibration.Tokens(request.Model, request.PromptBytes) };
        context.Features.Set(routing);
        if (request is null)
        {
            return routing; // a gRPC body the gateway cannot read goes on as it is, without affinity: the worker answers it
        }

        if (request.Blocks.Count > 0)
        {
            context.Request.Headers[GpuFleetHeaders.PrefixBlocks] = PrefixBlockHeader.Format(inspector.BlockBytes, request.PromptBytes, request.Blocks);
        }

        foreach (var admission in _admissions)
        {
            if (!await admission.AdmitAsync(context, request, request.TokenEstimate(routing.PromptTokens)))
            {
                return null;
            }
        }

        var started = time.GetTimestamp();
        routing.Affinity = await affinity.LookupAsync(request.Model, request.Blocks,
            [.. proxy.AvailableDestinations.Select(d => d.DestinationId)], request.SessionKey, context.RequestAborted);
        metrics.ObserveLookup(time.GetElapsedTime(started));
        return routing;
    }

    private async Task ForwardAsync(HttpContext context, IReverseProxyFeature proxy, RoutingState routing)
    {
        retryBudget.RecordRequest();
        // Headers set before forwarding (the key's rate-limit headers) survive a retry's reset.
        var ownHeaders = context.Response.Headers.ToList();
        for (var attempt = 1; ; attempt++)
        {
            // The workers available now, not when the request came: a request queued on a worker that died may have
            // waited there for seconds, during which another worker came back.
            var available = attempt == 1 ? proxy.AvailableDestinations : proxy.Route.Cluster?.DestinationsState.AvailableDestinations ?? [];
            proxy.AvailableDestinations = [.. available.Where(d => !routing.Tried.Contains(d.DestinationId))];
            if (proxy.AvailableDestinations.Count == 0)
            {
                await Unavailable().WriteAsync(context);
                return;
            }

            routing.RetryRequested = false;
            // A body can be sent again only when the gateway holds it (OpenAI requests, see BufferedBodyTransform); gRPC calls stream theirs.
            var replayable = routing.Body is not null || HttpMethods.IsGet(context.Request.Method);
            routing.MayRetry = replayable && attempt < options.MaxAttempts && proxy.AvailableDestinations.Count > 1;
            context.Features.Set<IForwarderErrorFeature>(null);
            var outcome = await AttemptAsync(context, proxy, routing);
            if (outcome is not Outcome.Retry)
            {
                return;
            }

            var destination = routing.Destination!;
            routing.Tried.Add(destination);
            if (!retryBudget.TryRetry(routing.RetryCause))
            {
                ForwardingLog.RetryBudgetSpent(logger, destination);
                await GatewayError.RetryBudgetSpent().WriteAsync(context);
                return;
            }

            ForwardingLog.Retrying(logger, destination, attempt);
            ResetResponse(context);
            foreach (var (name, value) in ownHeaders)
            {
                context.Response.Headers[name] = value;
            }
        }
    }

    private async Task<Outcome> AttemptAsync(HttpContext context, IReverseProxyFeature proxy, RoutingState routing)
    {
        var clientBody = context.Response.Body;
        var clientLifetime = context.Features.Get<IHttpRequestLifetimeFeature>();
        using var watch = new ResponseWatch(context, options, time, watchdog);
        context.Response.Body = watch;
        context.Features.Set<IHttpRequestLifetimeFeature>(watch);
        // Later stages reach the watch as a feature: ChosenWorkerMiddleware sets its first-token timeout.
        context.Features.Set(watch);
        try
        {
            await next(context);
        }
        finally
        {
            context.Response.Body = clientBody;
            context.Features.Set(clientLifetime);
            context.Features.Set<ResponseWatch>(null);
        }

        routing.Usage = watch.Usage ?? routing.Usage;
        var error = context.Features.Get<IForwarderErrorFeature>()?.Error ?? ForwarderError.None;
        var destination = routing.Destination;
        if (watch.ClientGone)
        {
            if (watch.ClientStalled)
            {
                ForwardingLog.ClientStalled(logger, destination ?? "?", options.ClientStallTimeout.TotalSeconds);
            }

            return Outcome.Done; // the client left: never counted against the worker
        }

        if (routing.RetryRequested)
        {
            return Outcome.Retry;
        }

        if (GrpcRefusal.HasStatus(context.Response) && !watch.AbortRequested && watch.TimedOut is null)
        {
            // The worker ended the gRPC call with its status. A trailers-only answer (UNIMPLEMENTED for an unknown
            // method, say) may come before the server read the request body, so copying that body can fail; and its
            // headers may already have gone out without END_STREAM. Pass the worker's status on, as trailers too,
            // instead of a reset or a stream without status (which clients report as INTERNAL).
            GrpcRefusal.CopyHeaderStatusToTrailers(context.Response);
            return Outcome.Done;
        }

        if (!watch.Started && !context.Response.HasStarted)
        {
            if (watch.TimedOut is not null)
            {
                ResetResponse(context);
                await new GatewayError(504, $"The worker sent nothing within {watch.FirstTokenTimeout.TotalSeconds:0} s.", "timeout", watch.TimedOut).WriteAsync(context);
                return Outcome.Done;
            }

            if (error is ForwarderError.Request or ForwarderError.RequestTimedOut && destination is not null)
            {
                // The connection to the worker failed or broke before it answered (passive health has noted it): the
                // worker is gone, and its request goes to another; when none is left to try, a 503 that says so.
                if (routing.MayRetry)
                {
                    routing.RetryCause = RetryCause.ConnectionFailed;
                    return Outcome.Retry;
                }

                ForwardingLog.Unreachable(logger, destination, attempt: routing.Tried.Count + 1);
                ResetResponse(context);
                await GatewayError.Unreachable(routing.Tried.Count + 1).WriteAsync(context);
                return Outcome.Done;
            }

            if (error is ForwarderError.NoAvailableDestinations)
            {
                ResetResponse(context);
                await Unavailable().WriteAsync(context);
                return Outcome.Done;
            }

            if (error != ForwarderError.None)
            {
                ResetResponse(context);
                await new GatewayError(502, "The worker could not be reached or failed before answering.", "server_error", "worker_unreachable") { RetryAfterSeconds = 1 }.WriteAsync(context);
                return Outcome.Done;
            }

            return Outcome.Done;
        }

        if (error != ForwarderError.None || watch.AbortRequested || watch.TimedOut is not null)
        {
            await EndBrokenResponseAsync(context, watch, clientBody, destination);
        }

        return Outcome.Done;
    }

    /// <summary>The response started and then broke (worker died, or went silent): end it as an error, never as a clean finish.</summary>
    private async Task EndBrokenResponseAsync(HttpContext context, ResponseWatch watch, Stream clientBody, string? destination)
    {
        ForwardingLog.StreamBroken(logger, destination ?? "?", watch.TimedOut ?? "worker_disconnected");
        var isStream = context.Response.ContentType?.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase) == true;
        if (!isStream)
        {
            watch.AbortClient(); // a cut JSON body cannot be mended: the client must see a failure, not a short body
            return;
        }

        var error = watch.TimedOut == "inter_token_timeout"
            ? new GatewayError(504, $"The worker sent nothing for {options.IdleTimeout.TotalSeconds:0} s; the stream was ended.", "timeout", "inter_token_timeout")
            : new GatewayError(502, "The worker serving this stream failed; the response is incomplete.", "server_error", "worker_disconnected");
        try
        {
            var text = "data: " + error.ToJson() + "\n\ndata: [DONE]\n\n";
            await clientBody.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), context.RequestAborted);
            await clientBody.FlushAsync(context.RequestAborted);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client is gone too.
        }
    }

    /// <summary>
    /// When every worker is full, waits (bounded) for room; then 429 with a Retry-After from measured throughput. When
    /// the measured throughput already says a slot will not free within the wait left, refuses at once with that
    /// Retry-After instead of holding the client for the whole wait.
    /// </summary>
    private async Task WaitForRoomAsync(HttpContext context, IReverseProxyFeature proxy)
    {
        if (proxy.AvailableDestinations.Count == 0)
        {
            throw Unavailable();
        }

        var deadline = time.GetTimestamp() + (long)(options.QueueWait.TotalSeconds * time.TimestampFrequency);
        while (proxy.AvailableDestinations.All(d => IsFull(d.DestinationId)))
        {
            var predicted = PredictedWait(proxy.AvailableDestinations);
            var left = (double)(deadline - time.GetTimestamp()) / time.TimestampFrequency;
            if (left <= 0 || predicted.Measured && predicted.Seconds > left)
            {
                throw new GatewayError(429, "Every worker is at capacity; retry after the time given in Retry-After.", "rate_limit_exceeded", "fleet_overloaded")
                {
                    RetryAfterSeconds = (int)Math.Clamp(Math.Ceiling(predicted.Seconds), 1, 60),
                };
            }

            await Task.Delay(FullPoll, time, context.RequestAborted);
        }
    }

    /// <summary>Full: its outstanding work (reported, plus what this gateway sent since) fills slots and queue.</summary>
    private bool IsFull(string destination)
    {
        if (board.Get(destination) is not { Status.Engine: { } engine } load || board.IsStale(load))
        {
            return false; // unknown: let the worker decide (it answers 429 itself when full)
        }

        return traffic.Outstanding(destination, engine, load.ReceivedAt).Requests >= engine.TotalSlots + engine.QueueCapacity;
    }

    /// <summary>
    /// Seconds until a slot frees for one more request: the requests queued ahead of it fleet-wide, plus itself, over the
    /// fleet's completion rate (slots over the mean request duration this gateway measured). Measured: false when no
    /// worker's duration is known yet (10 s is assumed for those).
    /// </summary>
    private (double Seconds, bool Measured) PredictedWait(IReadOnlyList<DestinationState> destinations)
    {
        double queued = 1, perSecond = 0;
        var measured = false;
        foreach (var d in destinations)
        {
            if (board.Get(d.DestinationId) is { Status.Engine: { } engine } load)
            {
                var slots = Math.Max(1, (int)engine.TotalSlots);
                queued += Math.Max(0, traffic.Outstanding(d.DestinationId, engine, load.ReceivedAt).Requests - slots);
                var mean = traffic.MeanDuration(d.DestinationId);
                measured |= mean is not null;
                perSecond += slots / Math.Max(0.05, (mean ?? TimeSpan.FromSeconds(10)).TotalSeconds);
            }
        }

        return perSecond <= 0 ? (5, false) : (queued / perSecond, measured);
    }

    private async Task<byte[]> ReadBodyAsync(HttpContext context)
    {
        var limit = options.MaxRequestBodyBytes;
        if (context.Request.ContentLength > limit)
        {
            throw TooLarge(limit);
        }

        if (context.Request.ContentLength is { } length)
        {
            // The usual case: one exact buffer, filled in place.
            var exact = new byte[length];
            try
            {
                await context.Request.Body.ReadExactlyAsync(exact, context.RequestAborted);
            }
            catch (Exception ex) when (IsIncompleteBody(ex))
            {
                throw GatewayError.BadRequest("The request body is shorter than its Content-Length.", null, "invalid_body");
            }

            return exact;
        }

        using var buffer = new MemoryStream();
        var chunk = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    throw TooLarge(limit);
                }

                buffer.Write(chunk, 0, read);
            }
        }
        catch (Exception ex) when (IsIncompleteBody(ex))
        {
            throw GatewayError.BadRequest("The request body ended before its last chunk.", null, "invalid_body");
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(chunk);
        }

        return buffer.ToArray();
    }

    // A client that stops sending mid-body (an abandoned chunked upload, a reset connection) is the client's doing, not
    // an unexpected error: a 400 (which a closed connection never reads), not a logged exception and a 500.
    private static bool IsIncompleteBody(Exception ex) => ex is EndOfStreamException or BadHttpRequestException or IOException;

    private static GatewayError TooLarge(long limit) =>
        new(413, string.Create(CultureInfo.InvariantCulture, $"The request body is larger than {limit} bytes."), "invalid_request_error", "request_too_large");

    private static GatewayError Unavailable() =>
        new(503, "No worker is available (all are down, draining or loading); retry shortly.", "service_unavailable", "no_worker_available") { RetryAfterSeconds = 2 };

    private static bool IsPost(HttpContext context, string path) =>
        HttpMethods.IsPost(context.Request.Method) && context.Request.Path.Equals(path, StringComparison.OrdinalIgnoreCase);

    private static void ResetResponse(HttpContext context)
    {
        context.Response.Clear();
        context.Response.StatusCode = StatusCodes.Status200OK;
    }

    private enum Outcome
    {
        Done,
        Retry,
    }
}

/// <summary>A check every generation request passes before routing (per-key limits), told the real usage at the end.</summary>
internal interface IRequestAdmission
{
    /// <summary>False when refused; the refusal response is then written.</summary>
    Task<bool> AdmitAsync(HttpContext context, InspectedRequest request, int estimatedTokens);

    /// <summary>The request ended; <paramref name="usage"/> is the worker's report when one came.</summary>
    Task CompleteAsync(HttpContext context, GpuFleet.Contracts.UsageReport? usage);
}

internal static partial class ForwardingLog
{
    [LoggerMessage(EventId = 600, EventName = "Retrying", Level = LogLevel.Information, Message = "Worker {Destination} failed before answering (attempt {Attempt}); retrying on another worker")]
    public static partial void Retrying(ILogger logger, string destination, int attempt);

    [LoggerMessage(EventId = 601, EventName = "RetryBudgetSpent", Level = LogLevel.Warning, Message = "Worker {Destination} answered unavailable and the retry budget is spent; not retrying")]
    public static partial void RetryBudgetSpent(ILogger logger, string destination);

    [LoggerMessage(EventId = 603, EventName = "Unreachable", Level = LogLevel.Warning, Message = "Worker {Destination} could not be reached (attempt {Attempt}) and no further worker may be tried")]
    public static partial void Unreachable(ILogger logger, string destination, int attempt);

    [LoggerMessage(EventId = 604, EventName = "ClientStalled", Level = LogLevel.Information, Message = "A client took nothing of the response from worker {Destination} for {Seconds} s; its connection was closed")]
    public static partial void ClientStalled(ILogger logger, string destination, double seconds);

    [LoggerMessage(EventId = 602, EventName = "StreamBroken", Level = LogLevel.Warning, Message = "A response from worker {Destination} broke after it started ({Reason}); ended with an error")]
    public static partial void StreamBroken(ILogger logger, string destination, string reason);
}
