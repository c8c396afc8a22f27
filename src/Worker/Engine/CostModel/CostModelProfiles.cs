namespace GpuFleet.Worker.Engine.CostModel;

/// <summary>
/// The built-in profiles (<c>--simulate-profile</c>), by name.
/// </summary>
/// <remarks>
/// <para><b>rtx3090-qwen36-27b-q4km</b>: one RTX 3090 (24 GB, PCIe 4.0 x16) running Qwen3.6-27B Q4_K_M (architecture
/// qwen35: 64 layers, 16 of them full attention with 4 KV heads of 256, 48 Gated DeltaNet layers) in llama.cpp with CUDA.
/// Published figures it rests on (measured by others, llama.cpp on one RTX 3090):</para>
/// <list type="bullet">
/// <item>Prefill of Qwen3.x-27B UD-Q4_K_XL (club-3090 issue #1111, github.com/noonghunna/club-3090/issues/1111, 2026-08-28):
/// 673 tok/s at 1k, 993 at 8k, 889 at 32k, 737 at 64k, 540 at 128k prompt tokens. Taken: ~1,000 tok/s at a shallow depth
/// (the 1k figure is dominated by start-up), the cost per token doubling at ~150k tokens of depth (fitted to 64k and 128k).</item>
/// <item>Decode of the same model there: 40.7 tok/s with MTP drafting at 61 % acceptance; Qwen3.6-27B UD-Q4_K_XL with MTP:
/// 47.6 tok/s and TTFT ~0.2 s for short prompts (club-3090 issue #85, github.com/noonghunna/club-3090/issues/85).</item>
/// <item>Qwen2.5-32B Q4_K_M on an RTX 3090 (dmatora/LLM-inference-speed-benchmarks issue #13) as the cross-check for a
/// dense ~30B Q4_K_M model of that card class.</item>
/// </list>
/// <para>Extrapolated, not measured: single-stream decode without MTP (our worker does not draft) at ~33 tok/s
/// (30 ms/step: 40.7 tok/s with 61 % MTP acceptance is ~1.25x plain decode); each further sequence in a decode step
/// +2 ms (a step reads the ~16 GB of weights once; a 3090 streams them in ~18 ms at 936 GB/s, and a batch of 4 adds
/// little, as llama.cpp's batched-bench shows for dense models); attention over the KV +0.1 ms per 1k context tokens of
/// each decoding sequence (only 16 of 64 layers attend); a 3 ms step overhead. Memory: 24 GB less ~17 GB of weights and
/// ~1.5 GB of buffers leaves ~5 GB: 64 KiB of f16 KV per token (16 layers x 4 heads x 256 x K,V x 2 B) and ~151 MB of
/// recurrent state per sequence (48 layers x 48 heads x 128 x 128 x 4 B), so 65,536 KV cells; snapshots move over
/// PCIe 4.0 at ~20 GB/s effective.</para>
/// <para><b>instant</b>: every cost zero and the same memory shape as the RTX 3090 profile: the scheduler, slots and
/// snapshots behave as on the card, but answers come as fast as the CPU can schedule them.</para>
/// </remarks>
internal static class CostModelProfiles
{
    public const string Rtx3090Qwen36 = "rtx3090-qwen36-27b-q4km";

    public const string Instant = "instant";

    private static readonly CostModelProfile Rtx3090 = new()
    {
        Name = Rtx3090Qwen36,
        Architecture = "qwen35",
        PrefillTokensPerSecond = 1000,
        PrefillDepthDoublingTokens = 150_000,
        DecodeStepSeconds = 0.030,
        DecodePerExtraSequenceSeconds = 0.002,
        DecodePerContextTokenSeconds = 0.0001 / 1000,
        StepOverheadSeconds = 0.003,
        KvTokens = 65_536,
        StateBytesPerSequence = 151L << 20,
        StateBytesPerToken = 64L << 10,
        HostTransferBytesPerSecond = 20e9,
        CanTrimTail = false,
    };

    private static readonly CostModelProfile InstantProfile = Rtx3090 with
    {
        Name = Instant,
        PrefillTokensPerSecond = 0,
        DecodeStepSeconds = 0,
        DecodePerExtraSequenceSeconds = 0,
        DecodePerContextTokenSeconds = 0,
        StepOverheadSeconds = 0,
        HostTransferBytesPerSecond = double.PositiveInfinity,
    };

    public static IReadOnlyList<string> Names { get; } = [Rtx3090Qwen36, Instant];

    public static CostModelProfile? Find(string? name) => name switch
    {
        Rtx3090Qwen36 => Rtx3090,
        Instant => InstantProfile,
        _ => null,
    };
}
