namespace GpuFleet.Contracts;

/// <summary>HTTP headers GpuFleet adds to responses so clients and operators can see how a request was served.</summary>
public static class GpuFleetHeaders
{
    /// <summary>The name of the worker that served the request.</summary>
    public const string Worker = "x-gpufleet-worker";

    /// <summary>Why the gateway chose that worker: affinity, load, session or fallback.</summary>
    public const string Route = "x-gpufleet-route";

    /// <summary>Optional client header that keeps a conversation on one worker.</summary>
    public const string SessionId = "x-session-id";

    /// <summary>Gateway to worker: the prompt's prefix blocks (<see cref="PrefixBlockHeader"/>); clients' copies are dropped.</summary>
    public const string PrefixBlocks = "x-gpufleet-prefix-blocks";

    /// <summary>Worker to gateway on non-streamed responses: <c>prompt=N;completion=N;cached=N</c> (streams carry it in an SSE comment).</summary>
    public const string Usage = "x-gpufleet-usage";
}
