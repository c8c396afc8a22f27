using GpuFleet.Gateway.Routing.Affinity;

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

/// <summary>Per-request routing state, from inspection through every attempt, on the HttpContext's features.</summary>
internal sealed class RoutingState
{
    public InspectedRequest? Request { get; init; }

    /// <summary>The request body as the gateway read it (OpenAI generation requests), sent as is to every attempt.</summary>
    public byte[]? Body { get; init; }

    public AffinityLookup Affinity { get; set; } = AffinityLookup.Empty;

    /// <summary>Estimated prompt tokens (canonical bytes / calibrated bytes per token).</summary>
    public int PromptTokens { get; init; }

    /// <summary>Destinations already tried by this request (failover picks among the others).</summary>
    public HashSet<string> Tried { get; } = new(StringComparer.Ordinal);

    public string? Reason { get; set; }

    /// <summary>The chosen worker's estimated time to first token.</summary>
    public TimeSpan Estimate { get; set; }

    /// <summary>Leading prompt blocks the chosen worker holds.</summary>
    public int ChosenHeldBlocks { get; set; }

    /// <summary>Estimated prompt tokens the chosen worker must prefill (those it does not hold): its first-token timeout grows with them.</summary>
    public int ChosenPrefillTokens { get; set; }

    /// <summary>The destination of the current attempt.</summary>
    public string? Destination { get; set; }

    /// <summary>Another worker may still be tried if this attempt fails before the first byte.</summary>
    public bool MayRetry { get; set; }

    /// <summary>Set by the response transform: the worker refused (429/503) and the body was suppressed for a retry.</summary>
    public bool RetryRequested { get; set; }

    /// <summary>Why the current attempt asked for a retry: a refusal at capacity spends no retry budget.</summary>
    public GpuFleet.Gateway.Forwarding.RetryCause RetryCause { get; set; }

    /// <summary>The worker's usage report, once seen.</summary>
    public GpuFleet.Contracts.UsageReport? Usage { get; set; }
}
