using GpuFleet.Gateway.Routing;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// Sends a body the gateway already holds (every OpenAI generation request, read once for inspection) as one buffer
/// instead of through YARP's streaming copy. The streaming copy flushes the request headers on their own before the
/// body, so every request cost the gateway and the worker an extra socket write and read; with the whole body in hand,
/// headers and body leave in one write. YARP (2.3) refuses a content replaced by a transform, so the transform only
/// tags the outgoing request with the bytes and <see cref="Handler"/>, last in the forwarder's HTTP client, swaps the
/// content. Each attempt of a failover gets a fresh content over the same bytes. Calls whose body streams through
/// (gRPC) keep YARP's copy.
/// </summary>
internal static class BufferedBodyTransform
{
    private static readonly HttpRequestOptionsKey<byte[]> BodyKey = new("GpuFleet.BufferedBody");

    public static ValueTask ApplyAsync(RequestTransformContext transform)
    {
        if (transform.HttpContext.Features.Get<InspectedRequestFeature>()?.Body is { } body && transform.ProxyRequest.Content is not null)
        {
            transform.ProxyRequest.Options.Set(BodyKey, body);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>YARP's client factory with <see cref="Handler"/> in front of its SocketsHttpHandler.</summary>
    internal sealed class ClientFactory : ForwarderHttpClientFactory
    {
        protected override HttpMessageHandler WrapHandler(ForwarderHttpClientContext context, HttpMessageHandler handler) =>
            new Handler(base.WrapHandler(context, handler));
    }

    /// <summary>Replaces YARP's unstarted streaming content with the tagged bytes (YARP's content is then never read).</summary>
    private sealed class Handler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Options.TryGetValue(BodyKey, out var body) && request.Content is { } streamed)
            {
                var buffered = new ByteArrayContent(body);
                foreach (var (name, values) in streamed.Headers.NonValidated)
                {
                    buffered.Headers.TryAddWithoutValidation(name, values);
                }

                buffered.Headers.ContentLength = body.Length;
                request.Content = buffered;
            }

            return base.SendAsync(request, cancellationToken);
        }
    }
}
