namespace GpuFleet.Gateway.Routing;

/// <summary>Why a worker was chosen (the <c>x-gpufleet-route</c> header).</summary>
internal static class RouteReasons
{
    /// <summary>It holds the longest useful part of the prompt and still gives the earliest first token.</summary>
    public const string Affinity = "affinity";

    /// <summary>Chosen by load: nothing cached anywhere made a difference, or the hot-spot guard overrode affinity.</summary>
    public const string Load = "load";

    /// <summary>The conversation's session sticks to it.</summary>
    public const string Session = "session";

    /// <summary>
    /// No worker's context seems to hold the prompt: the one with the largest context gets it and answers precisely
    /// (<c>context_length_exceeded</c> when it cannot).
    /// </summary>
    public const string Context = "context";

    /// <summary>No live load report to score by (status streams reconnecting): the least busy by the gateway's own count.</summary>
    public const string Fallback = "fallback";
}
