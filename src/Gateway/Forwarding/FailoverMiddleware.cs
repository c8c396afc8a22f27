using GpuFleet.Gateway.Observability;
using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// The failover stage, last before YARP's load balancing: forwards the request, and while nothing has been sent to the
/// client moves it to another worker when the chosen one could not be reached, was lost before answering, or refused
/// (429/503), among the workers available at that moment and within the retry budget (only 503s spend it). Each
/// attempt is watched (<see cref="ResponseWatch"/>: first-token and inter-token timeouts, the usage report, a client
/// that stopped reading). After the first byte a broken or silent stream ends with an OpenAI error event and
/// <c>[DONE]</c>, never a clean-looking end or a hang.
/// </summary>
internal sealed class FailoverMiddleware(
    RequestDelegate next,
    BytesPerToken calibration,
    RetryBudget retryBudget,
    ResponseWatchdog watchdog,
    ForwardingOptions options,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<FailoverMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var failover = new FailoverFeature();
        context.Features.Set(failover);
        await ForwardAsync(context, context.Features.Get<IReverseProxyFeature>()!, failover);
        var destination = context.Features.Get<ChosenWorkerFeature>()?.Destination;
        if (context.Features.Get<InspectedRequestFeature>()?.Request is { } inspected && context.Features.Get<WorkerAnswerFeature>()?.Usage is { } usage)
        {
            calibration.Observe(inspected.Model, inspected.PromptBytes, usage.PromptTokens);
            metrics.ObserveUsage(destination ?? "?", usage);
        }

        metrics.ObserveRequest(destination ?? "none", context.Features.Get<RouteChoiceFeature>()?.Reason ?? "none", context.Response.StatusCode);
    }

    private async Task ForwardAsync(HttpContext context, IReverseProxyFeature proxy, FailoverFeature failover)
    {
        retryBudget.RecordRequest();
        // Headers set before forwarding (the key's rate-limit headers) survive a retry's reset.
        var ownHeaders = context.Response.Headers.ToList();
        // A body can be sent again only when the gateway holds it (OpenAI requests, see BufferedBodyTransform); gRPC calls stream theirs.
        var replayable = context.Features.Get<InspectedRequestFeature>()?.Body is not null || HttpMethods.IsGet(context.Request.Method);
        for (var attempt = 1; ; attempt++)
        {
            // The workers available now, not when the request came: a request queued on a worker that died may have
            // waited there for seconds, during which another worker came back.
            var available = attempt == 1 ? proxy.AvailableDestinations : proxy.Route.Cluster?.DestinationsState.AvailableDestinations ?? [];
            proxy.AvailableDestinations = [.. available.Where(d => !failover.Tried.Contains(d.DestinationId))];
            if (proxy.AvailableDestinations.Count == 0)
            {
                await GatewayError.NoWorkerAvailable().WriteAsync(context);
                return;
            }

            failover.StartAttempt(mayRetry: replayable && attempt < options.MaxAttempts && proxy.AvailableDestinations.Count > 1);
            context.Features.Set<IForwarderErrorFeature>(null);
            var (outcome, cause) = await AttemptAsync(context, proxy, failover);
            if (outcome is not Outcome.Retry)
            {
                return;
            }

            var destination = context.Features.Get<ChosenWorkerFeature>()!.Destination;
            failover.AddTried(destination);
            if (!retryBudget.TryRetry(cause))
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

    /// <summary>One attempt: its outcome, and when it is a retry, why (which decides whether it spends the retry budget).</summary>
    private async Task<(Outcome Outcome, RetryCause Cause)> AttemptAsync(HttpContext context, IReverseProxyFeature proxy, FailoverFeature failover)
    {
        var clientBody = context.Response.Body;
        var clientLifetime = context.Features.Get<IHttpRequestLifetimeFeature>();
        // Each attempt gets a fresh answer: a refusal retried elsewhere leaves nothing behind for the next.
        var answer = new WorkerAnswerFeature();
        context.Features.Set(answer);
        using var watch = new ResponseWatch(context, answer, options, time, watchdog);
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

        var error = context.Features.Get<IForwarderErrorFeature>()?.Error ?? ForwarderError.None;
        var destination = context.Features.Get<ChosenWorkerFeature>()?.Destination;
        if (watch.ClientGone)
        {
            if (watch.ClientStalled)
            {
                ForwardingLog.ClientStalled(logger, destination ?? "?", options.ClientStallTimeout.TotalSeconds);
            }

            return (Outcome.Done, default); // the client left: never counted against the worker
        }

        if (answer.RefusedStatus is { } refused)
        {
            return (Outcome.Retry, refused == StatusCodes.Status429TooManyRequests ? RetryCause.WorkerAtCapacity : RetryCause.WorkerUnavailable);
        }

        if (GrpcRefusal.HasStatus(context.Response) && !watch.AbortRequested && watch.TimedOut is null)
        {
            // The worker ended the gRPC call with its status. A trailers-only answer (UNIMPLEMENTED for an unknown
            // method, say) may come before the server read the request body, so copying that body can fail; and its
            // headers may already have gone out without END_STREAM. Pass the worker's status on, as trailers too,
            // instead of a reset or a stream without status (which clients report as INTERNAL).
            GrpcRefusal.CopyHeaderStatusToTrailers(context.Response);
            return (Outcome.Done, default);
        }

        if (!watch.Started && !context.Response.HasStarted)
        {
            if (watch.TimedOut is not null)
            {
                ResetResponse(context);
                await new GatewayError(504, $"The worker sent nothing within {watch.FirstTokenTimeout.TotalSeconds:0} s.", "timeout", watch.TimedOut).WriteAsync(context);
                return (Outcome.Done, default);
            }

            if (error is ForwarderError.Request or ForwarderError.RequestTimedOut && destination is not null)
            {
                // The connection to the worker failed or broke before it answered (passive health has noted it): the
                // worker is gone, and its request goes to another; when none is left to try, a 503 that says so.
                if (failover.MayRetry)
                {
                    return (Outcome.Retry, RetryCause.ConnectionFailed);
                }

                ForwardingLog.Unreachable(logger, destination, attempt: failover.Tried.Count + 1);
                ResetResponse(context);
                await GatewayError.Unreachable(failover.Tried.Count + 1).WriteAsync(context);
                return (Outcome.Done, default);
            }

            if (error is ForwarderError.NoAvailableDestinations)
            {
                ResetResponse(context);
                await GatewayError.NoWorkerAvailable().WriteAsync(context);
                return (Outcome.Done, default);
            }

            if (error != ForwarderError.None)
            {
                ResetResponse(context);
                await new GatewayError(502, "The worker could not be reached or failed before answering.", "server_error", "worker_unreachable") { RetryAfterSeconds = 1 }.WriteAsync(context);
                return (Outcome.Done, default);
            }

            return (Outcome.Done, default);
        }

        if (error != ForwarderError.None || watch.AbortRequested || watch.TimedOut is not null)
        {
            await EndBrokenResponseAsync(context, watch, clientBody, destination);
        }

        return (Outcome.Done, default);
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


