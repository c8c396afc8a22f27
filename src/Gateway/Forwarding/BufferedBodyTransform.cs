using GpuFleet.Gateway.Routing;
using Yarp.ReverseProxy.Transforms;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// Sends a body the gateway already holds (every OpenAI generation request, read once for inspection) as one buffer
/// instead of through YARP's streaming copy. The streaming copy flushes the request headers on their own before the
/// body, so every request cost the gateway and the worker an extra socket write and read; with the whole body in hand,
/// headers and body leave in one write. Each attempt of a failover gets a fresh content over the same bytes. Calls
/// whose body streams through (gRPC) keep YARP's copy.
/// </summary>
internal static class BufferedBodyTransform
{
    public static ValueTask ApplyAsync(RequestTransformContext transform)
    {
        if (transform.HttpContext.Features.Get<RoutingState>()?.Body is not { } body || transform.ProxyRequest.Content is not { } streamed)
        {
            return ValueTask.CompletedTask;
        }

        var buffered = new ByteArrayContent(body);
        foreach (var (name, values) in streamed.Headers.NonValidated)
        {
            buffered.Headers.TryAddWithoutValidation(name, values);
        }

        buffered.Headers.ContentLength = body.Length;
        transform.ProxyRequest.Content = buffered; // YARP's unstarted streaming content is then never read
        streamed.Dispose();
        return ValueTask.CompletedTask;
    }
}
