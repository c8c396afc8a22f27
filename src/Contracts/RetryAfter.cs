using System.Globalization;

namespace GpuFleet.Contracts;

/// <summary>
/// The one rounding of a wait to the whole seconds of <c>Retry-After</c> (and the gRPC pushback made from them), for the
/// gateway and the worker: rounded up, so that a client does not come back early; at least 1, since the header cannot
/// say less and 0 would invite an immediate retry; at most the caller's bound, since an estimate far out is no promise.
/// </summary>
public static class RetryAfter
{
    /// <summary>The gRPC trailer (or trailers-only header) that tells a client how long to wait before retrying (gRPC's retry design, A6).</summary>
    public const string GrpcPushbackHeader = "grpc-retry-pushback-ms";

    /// <summary>Whole seconds to wait for <paramref name="wait"/>, rounded up, within 1..<paramref name="max"/>.</summary>
    public static int Seconds(TimeSpan wait, int max) => Seconds(wait.TotalSeconds, max);

    /// <summary>Whole seconds to wait for an estimate in seconds (which may be beyond what a TimeSpan holds), rounded up, within 1..<paramref name="max"/>.</summary>
    public static int Seconds(double seconds, int max) => (int)Math.Clamp(Math.Ceiling(seconds), 1, max);

    /// <summary>A wait of whole seconds as the value of <see cref="GrpcPushbackHeader"/> (milliseconds).</summary>
    public static string GrpcPushback(int seconds) => (seconds * 1000L).ToString(CultureInfo.InvariantCulture);
}
