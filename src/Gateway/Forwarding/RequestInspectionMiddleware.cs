using System.Globalization;
using GpuFleet.Contracts;
using GpuFleet.Gateway.Observability;
using GpuFleet.Gateway.Routing;
using GpuFleet.Gateway.Routing.Affinity;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Model;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// The first stage of the gateway's part of YARP's proxy pipeline: for a generation request (OpenAI chat or completion,
/// gRPC Generate) it reads the body (bounded: 413), inspects it (bad OpenAI input: 400 from the gateway, no worker sees
/// it), marks the prompt's blocks for the worker, runs the admissions (per-key limits) and looks up affinity (one round
/// trip). It alone writes the request's <see cref="InspectedRequestFeature"/>; when the request ends, whatever happened
/// further on, it tells the admissions the usage the worker reported (<see cref="WorkerAnswerFeature"/>; none for a refusal).
/// </summary>
internal sealed class RequestInspectionMiddleware(
    RequestDelegate next,
    RequestInspector inspector,
    AffinityIndex affinity,
    BytesPerToken calibration,
    IEnumerable<IRequestAdmission> admissions,
    ForwardingOptions options,
    GatewayMetrics metrics,
    TimeProvider time)
{
    /// <summary>The gRPC method whose prompt the gateway reads for affinity, as OpenAI generation requests.</summary>
    private const string GenerateMethodPath = "/gpufleet.v1.Inference/Generate";

    private readonly IRequestAdmission[] _admissions = [.. admissions];

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var proxy = context.Features.Get<IReverseProxyFeature>()!;
        context.Request.Headers.Remove(GpuFleetHeaders.PrefixBlocks);
        try
        {
            try
            {
                if (!await InspectAsync(context, proxy))
                {
                    return; // refused by an admission, which wrote the response
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

            await next(context);
        }
        finally
        {
            // However the request ended (answered, refused further on, the client gone during the affinity lookup), an
            // admission that counted it settles with the worker's usage, or none; one that did not has nothing to settle.
            if (context.Features.Get<InspectedRequestFeature>() is { Request: not null })
            {
                var usage = context.Features.Get<WorkerAnswerFeature>()?.Usage;
                foreach (var admission in _admissions)
                {
                    await admission.CompleteAsync(context, usage);
                }
            }
        }
    }

    /// <summary>
    /// For a generation request (OpenAI chat or completion, gRPC Generate): reads the body (bounded: 413), inspects it
    /// (bad OpenAI input: 400 from the gateway), marks the prompt's blocks for the worker, runs the admissions (per-key
    /// limits) and looks up affinity. Any other request passes without an inspection. False when an admission refused.
    /// </summary>
    private async Task<bool> InspectAsync(HttpContext context, IReverseProxyFeature proxy)
    {
        var chat = IsPost(context, "/v1/chat/completions");
        var generate = !chat && IsPost(context, GenerateMethodPath) && GrpcRefusal.IsGrpc(context.Request);
        if (!generate && !chat && !IsPost(context, "/v1/completions"))
        {
            return true;
        }

        var body = await ReadBodyAsync(context);
        var session = context.Request.Headers[GpuFleetHeaders.SessionId].ToString();
        var request = generate ? inspector.InspectGenerate(body, session) : inspector.Inspect(body, chat, session);
        var inspected = new InspectedRequestFeature { Request = request, Body = body, PromptTokens = request is null ? 0 : calibration.Tokens(request.Model, request.PromptBytes) };
        context.Features.Set(inspected);
        if (request is null)
        {
            return true; // a gRPC body the gateway cannot read goes on as it is, without affinity: the worker answers it
        }

        if (request.Blocks.Count > 0)
        {
            context.Request.Headers[GpuFleetHeaders.PrefixBlocks] = PrefixBlockHeader.Format(inspector.BlockBytes, request.PromptBytes, request.Blocks);
        }

        foreach (var admission in _admissions)
        {
            if (!await admission.AdmitAsync(context, request, request.TokenEstimate(inspected.PromptTokens)))
            {
                return false;
            }
        }

        var started = time.GetTimestamp();
        inspected.Affinity = await affinity.LookupAsync(request.Model, request.Blocks,
            [.. proxy.AvailableDestinations.Select(d => d.DestinationId)], request.SessionKey, context.RequestAborted);
        metrics.ObserveLookup(time.GetElapsedTime(started));
        return true;
    }

    private async Task<byte[]> ReadBodyAsync(HttpContext context)
    {
        var limit = options.MaxRequestBodyBytes;
        var length = context.Request.ContentLength;
        if (length > limit)
        {
            throw TooLarge(limit);
        }

        try
        {
            return await RequestBodyReader.ReadAsync(context.Request.Body, length, limit, context.RequestAborted) ?? throw TooLarge(limit);
        }
        catch (Exception ex) when (IsIncompleteBody(ex))
        {
            throw GatewayError.BadRequest(length is null ? "The request body ended before its last chunk." : "The request body is shorter than its Content-Length.", null, "invalid_body");
        }
    }

    // A client that stops sending mid-body (an abandoned chunked upload, a reset connection) is the client's doing, not
    // an unexpected error: a 400 (which a closed connection never reads), not a logged exception and a 500.
    private static bool IsIncompleteBody(Exception ex) => ex is EndOfStreamException or BadHttpRequestException or IOException;

    private static GatewayError TooLarge(long limit) =>
        new(413, string.Create(CultureInfo.InvariantCulture, $"The request body is larger than {limit} bytes."), "invalid_request_error", "request_too_large");

    private static bool IsPost(HttpContext context, string path) =>
        HttpMethods.IsPost(context.Request.Method) && context.Request.Path.Equals(path, StringComparison.OrdinalIgnoreCase);
}
