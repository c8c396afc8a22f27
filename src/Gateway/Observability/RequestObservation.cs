namespace GpuFleet.Gateway.Observability;

/// <summary>
/// What the metrics need to know about one proxied request that only later stages see, on the HttpContext's features:
/// when the first and last response bytes went out (written by the response watch of the attempt that answered) and
/// the code of the error the gateway answered itself. <see cref="RequestMetricsMiddleware"/> owns it and records it
/// when the request ends.
/// </summary>
internal sealed class RequestObservation(long startedAt)
{
    /// <summary>Timestamp (TimeProvider ticks) when the request entered the proxy pipeline.</summary>
    public long StartedAt { get; } = startedAt;

    /// <summary>Timestamp of the first response byte to the client; 0 while none went out.</summary>
    public long FirstByteAt { get; private set; }

    /// <summary>Timestamp of the last response write to the client; 0 while none went out.</summary>
    public long LastWriteAt { get; private set; }

    /// <summary>The code of the error the gateway itself answered with (e.g. <c>fleet_overloaded</c>), null when none.</summary>
    public string? ErrorCode { get; private set; }

    /// <summary>An attempt ended; one that wrote nothing (retried before its first byte) leaves the timings alone.</summary>
    public void AttemptEnded(long firstByteAt, long lastWriteAt)
    {
        if (firstByteAt == 0)
        {
            return;
        }

        if (FirstByteAt == 0)
        {
            FirstByteAt = firstByteAt;
        }

        LastWriteAt = Math.Max(LastWriteAt, lastWriteAt);
    }

    /// <summary>The gateway answered with its own error.</summary>
    public void Refused(string? code) => ErrorCode = code;
}
