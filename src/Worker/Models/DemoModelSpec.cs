using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.Models;

/// <summary>Architectures the demo-model generator can build.</summary>
public enum DemoArchitecture
{
    /// <summary>Plain attention (Qwen3 dense).</summary>
    Qwen3,
    /// <summary>Hybrid Gated DeltaNet + gated attention (Qwen3.5 / Qwen3.6 dense), llama.cpp arch <c>qwen35</c>.</summary>
    Qwen35,
}

/// <summary><c>Tiny</c>: for tests (well under 1 MB with the byte-level tokenizer). <c>Small</c>: 12 layers of width 1,024, quantized, for benchmarks (~160 M parameters in the layers; with the real Qwen vocabulary its embedding and output matrices add ~310 M).</summary>
public enum DemoModelSize
{
    Tiny,
    Small,
}

internal sealed record TensorDeclaration(string Name, long[] Shape, GgmlType Type);

/// <summary>Hyper-parameters and the exact tensor list llama.cpp creates for an architecture.</summary>
/// <remarks>
/// Every tensor the loader creates must be declared (probe pitfall A: an undeclared optional tensor is
/// skipped, and for qwen35 a missing one crashed context creation). output.weight is declared rather than
/// tied to token_embd: with tied random embeddings a model mostly predicts its own last input token, and
/// greedy output collapses into one repeated token, which would make output comparisons meaningless.
/// </remarks>
internal sealed record DemoModelSpec(
    string ArchitectureName,
    int Layers,
    int Embedding,
    int FeedForward,
    int Heads,
    int KvHeads,
    int HeadDim,
    int ContextLength,
    IReadOnlyDictionary<string, object> Hyperparameters,
    IReadOnlyList<TensorDeclaration> Tensors)
{
    public static DemoModelSpec Create(DemoArchitecture architecture, DemoModelSize size, int vocabularySize)
    {
        var tiny = size == DemoModelSize.Tiny;
        return architecture switch
        {
            DemoArchitecture.Qwen3 => tiny
                ? Qwen3(vocabularySize, layers: 2, embedding: 64, feedForward: 128, heads: 4, kvHeads: 2, headDim: 16, contextLength: 8192)
                : Qwen3(vocabularySize, layers: 12, embedding: 1024, feedForward: 3072, heads: 16, kvHeads: 4, headDim: 64, contextLength: 32768),
            DemoArchitecture.Qwen35 => tiny
                ? Qwen35(vocabularySize, layers: 4, embedding: 64, feedForward: 128, heads: 4, kvHeads: 2, headDim: 32, ropeDims: 8,
                    ropeSections: [2, 1, 1, 0], stateSize: 16, keyHeads: 2, valueHeads: 4, contextLength: 8192)
                : Qwen35(vocabularySize, layers: 12, embedding: 1024, feedForward: 3072, heads: 16, kvHeads: 4, headDim: 64, ropeDims: 16,
                    ropeSections: [4, 2, 2, 0], stateSize: 64, keyHeads: 8, valueHeads: 16, contextLength: 32768),
            _ => throw new ArgumentOutOfRangeException(nameof(architecture), architecture, "Unknown architecture."),
        };
    }

    private static DemoModelSpec Qwen3(int vocab, int layers, int embedding, int feedForward, int heads, int kvHeads, int headDim, int contextLength)
    {
        var tensors = CommonHead(vocab, embedding);
        for (var i = 0; i < layers; i++)
        {
            var p = $"blk.{i}.";
            tensors.AddRange(
            [
                new(p + "attn_norm.weight", [embedding], GgmlType.F32),
                new(p + "attn_q.weight", [embedding, headDim * heads], GgmlType.F16),
                new(p + "attn_k.weight", [embedding, headDim * kvHeads], GgmlType.F16),
                new(p + "attn_v.weight", [embedding, headDim * kvHeads], GgmlType.F16),
                new(p + "attn_output.weight", [headDim * heads, embedding], GgmlType.F16),
                new(p + "attn_q_norm.weight", [headDim], GgmlType.F32),
                new(p + "attn_k_norm.weight", [headDim], GgmlType.F32),
                new(p + "ffn_norm.weight", [embedding], GgmlType.F32),
            ]);
            tensors.AddRange(FeedForwardTensors(p, embedding, feedForward));
        }

        var hp = CommonHyperparameters(layers, embedding, feedForward, heads, kvHeads, headDim, contextLength, vocab);
        return new DemoModelSpec("qwen3", layers, embedding, feedForward, heads, kvHeads, headDim, contextLength, hp, tensors);
    }

    private static DemoModelSpec Qwen35(
        int vocab, int layers, int embedding, int feedForward, int heads, int kvHeads, int headDim, int ropeDims, int[] ropeSections,
        int stateSize, int keyHeads, int valueHeads, int contextLength)
    {
        const int ConvKernel = 4;
        const int FullAttentionInterval = 4;
        var keyDim = stateSize * keyHeads;
        var valueDim = stateSize * valueHeads;
        var convDim = (keyDim * 2) + valueDim;
        var tensors = CommonHead(vocab, embedding);
        for (var i = 0; i < layers; i++)
        {
            var p = $"blk.{i}.";
            tensors.Add(new(p + "attn_norm.weight", [embedding], GgmlType.F32));
            tensors.Add(new(p + "post_attention_norm.weight", [embedding], GgmlType.F32));
            if ((i + 1) % FullAttentionInterval != 0)
            {
                // Gated DeltaNet (recurrent) layer.
                tensors.AddRange(
                [
                    new(p + "attn_qkv.weight", [embedding, convDim], GgmlType.F16),
                    new(p + "attn_gate.weight", [embedding, valueDim], GgmlType.F16),
                    new(p + "ssm_conv1d.weight", [ConvKernel, convDim], GgmlType.F32),
                    new(p + "ssm_dt.bias", [valueHeads], GgmlType.F32),
                    new(p + "ssm_a", [valueHeads], GgmlType.F32),
                    new(p + "ssm_beta.weight", [embedding, valueHeads], GgmlType.F16),
                    new(p + "ssm_alpha.weight", [embedding, valueHeads], GgmlType.F16),
                    new(p + "ssm_norm.weight", [stateSize], GgmlType.F32),
                    new(p + "ssm_out.weight", [valueDim, embedding], GgmlType.F16),
                ]);
            }
            else
            {
                // Gated full attention: q carries the gate too (2x).
                tensors.AddRange(
                [
                    new(p + "attn_q.weight", [embedding, headDim * heads * 2], GgmlType.F16),
                    new(p + "attn_k.weight", [embedding, headDim * kvHeads], GgmlType.F16),
                    new(p + "attn_v.weight", [embedding, headDim * kvHeads], GgmlType.F16),
                    new(p + "attn_output.weight", [headDim * heads, embedding], GgmlType.F16),
                    new(p + "attn_q_norm.weight", [headDim], GgmlType.F32),
                    new(p + "attn_k_norm.weight", [headDim], GgmlType.F32),
                ]);
            }

            tensors.AddRange(FeedForwardTensors(p, embedding, feedForward));
        }

        var hp = CommonHyperparameters(layers, embedding, feedForward, heads, kvHeads, headDim, contextLength, vocab);
        hp["rope.dimension_count"] = (uint)ropeDims;
        hp["rope.dimension_sections"] = ropeSections;
        hp["full_attention_interval"] = (uint)FullAttentionInterval;
        hp["ssm.conv_kernel"] = (uint)ConvKernel;
        hp["ssm.state_size"] = (uint)stateSize;
        hp["ssm.group_count"] = (uint)keyHeads;
        hp["ssm.time_step_rank"] = (uint)valueHeads;
        hp["ssm.inner_size"] = (uint)valueDim;
        return new DemoModelSpec("qwen35", layers, embedding, feedForward, heads, kvHeads, headDim, contextLength, hp, tensors);
    }

    private static List<TensorDeclaration> CommonHead(int vocab, int embedding) =>
    [
        new("token_embd.weight", [embedding, vocab], GgmlType.F16),
        new("output_norm.weight", [embedding], GgmlType.F32),
        new("output.weight", [embedding, vocab], GgmlType.F16),
    ];

    private static TensorDeclaration[] FeedForwardTensors(string prefix, int embedding, int feedForward) =>
    [
        new(prefix + "ffn_gate.weight", [embedding, feedForward], GgmlType.F16),
        new(prefix + "ffn_up.weight", [embedding, feedForward], GgmlType.F16),
        new(prefix + "ffn_down.weight", [feedForward, embedding], GgmlType.F16),
    ];

    private static Dictionary<string, object> CommonHyperparameters(
        int layers, int embedding, int feedForward, int heads, int kvHeads, int headDim, int contextLength, int vocab) => new()
    {
        ["block_count"] = (uint)layers,
        ["context_length"] = (uint)contextLength,
        ["embedding_length"] = (uint)embedding,
        ["feed_forward_length"] = (uint)feedForward,
        ["attention.head_count"] = (uint)heads,
        ["attention.head_count_kv"] = (uint)kvHeads,
        ["attention.key_length"] = (uint)headDim,
        ["attention.value_length"] = (uint)headDim,
        ["attention.layer_norm_rms_epsilon"] = 1e-6f,
        ["rope.freq_base"] = 1e7f,
        ["vocab_size"] = (uint)vocab,
    };
}
