using System.Diagnostics.Metrics;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// The scheduler's per-event instruments (meter <see cref="MeterName"/>): queue wait per admitted request, and per
/// decode step its batch (sequences decoding, prompt tokens prefilled) and duration. Status-like values (queue depth,
/// slots, memory) are read from <see cref="EngineStatus"/> by the worker's metrics instead. The meter is static, as
/// the runtime's own libraries keep theirs: one engine runs per worker process, and Prometheus' <c>instance</c> label
/// tells workers apart; without a listener a record costs a branch.
/// </summary>
internal static class EngineMetrics
{
    public const string MeterName = "GpuFleet.Worker.Engine";

    /// <summary>Seconds: an idle worker admits at once, a full one holds requests for as long as a generation runs.</summary>
    private static readonly double[] WaitBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];

    /// <summary>Seconds: a GPU step takes milliseconds to tens of them; a CPU step or a long prefill chunk seconds.</summary>
    private static readonly double[] StepBuckets = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Sequences per step: up to the slot count (powers of two cover every configuration).</summary>
    private static readonly long[] BatchBuckets = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256];

    private static readonly Meter Meter = new(MeterName);

    private static readonly Histogram<double> QueueWait = Meter.CreateHistogram("gpufleet_worker_queue_wait", "s",
        "Time from a request's submission to its admission into a slot.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });

    private static readonly Histogram<double> StepDuration = Meter.CreateHistogram("gpufleet_worker_step_duration", "s",
        "Duration of one scheduler step: the batch's decode plus sampling for every sequence in it.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = StepBuckets });

    private static readonly Histogram<long> DecodeBatch = Meter.CreateHistogram<long>("gpufleet_worker_decode_batch_size", "{sequence}",
        "Sequences generating a token in one step (the decode batch; prefill chunks ride along).",
        advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = BatchBuckets });

    private static readonly Counter<long> PrefillTokens = Meter.CreateCounter<long>("gpufleet_worker_prefilled_tokens", "{token}",
        "Prompt tokens computed by decode steps (those not served from the prefix cache).");

    private static readonly Counter<long> Steps = Meter.CreateCounter<long>("gpufleet_worker_steps", "{step}",
        "Scheduler steps decoded, by kind: decode (only generating sequences), prefill (only prompt chunks) or mixed.");

    public static void Admitted(TimeSpan queueWait) => QueueWait.Record(queueWait.TotalSeconds);

    public static void Stepped(int decodeSequences, int prefillTokens, TimeSpan duration)
    {
        StepDuration.Record(duration.TotalSeconds);
        DecodeBatch.Record(decodeSequences);
        PrefillTokens.Add(prefillTokens);
        var kind = prefillTokens == 0 ? "decode" : decodeSequences == 0 ? "prefill" : "mixed";
        Steps.Add(1, new KeyValuePair<string, object?>("kind", kind));
    }
}
