using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.Tests.LlamaCpp;

/// <summary>
/// Pins every mirrored struct to llama.h / ggml.h of llama.cpp v0.5.0: sizes and field offsets as the C
/// compiler lays them out (x86-64 System V), and the library's own default-parameter functions read back
/// through the mirrors, which would show garbage at these fields if a layout drifted.
/// </summary>
[Collection(LlamaCollection.Name)]
public sealed class AbiTests(TestModels models)
{
    private readonly TestModels _models = models; // ensures the libraries are loaded

    [Fact]
    public void Struct_sizes_match_the_header()
    {
        Assert.NotNull(_models.Backend);
        Assert.Equal(80, Unsafe.SizeOf<LlamaModelParams>());
        Assert.Equal(160, Unsafe.SizeOf<LlamaContextParams>());
        Assert.Equal(56, Unsafe.SizeOf<LlamaBatchNative>());
        Assert.Equal(64, Unsafe.SizeOf<LlamaModelQuantizeParams>());
        Assert.Equal(1, Unsafe.SizeOf<LlamaSamplerChainParams>());
        Assert.Equal(12, Unsafe.SizeOf<LlamaTokenData>());
        Assert.Equal(32, Unsafe.SizeOf<LlamaTokenDataArray>());
        Assert.Equal(16, Unsafe.SizeOf<LlamaChatMessage>());
        Assert.Equal(24, Unsafe.SizeOf<GgmlInitParams>());
        Assert.Equal(16, Unsafe.SizeOf<GgufInitParams>());
        Assert.Equal(528, Unsafe.SizeOf<GgmlThreadpoolParams>());
    }

    [Theory]
    [InlineData(nameof(LlamaModelParams.NGpuLayers), 16)]
    [InlineData(nameof(LlamaModelParams.SplitMode), 20)]
    [InlineData(nameof(LlamaModelParams.LoadMode), 24)]
    [InlineData(nameof(LlamaModelParams.LazyMode), 28)]
    [InlineData(nameof(LlamaModelParams.MainGpu), 32)]
    [InlineData(nameof(LlamaModelParams.TensorSplit), 40)]
    [InlineData(nameof(LlamaModelParams.ProgressCallback), 48)]
    [InlineData(nameof(LlamaModelParams.KvOverrides), 64)]
    [InlineData(nameof(LlamaModelParams.VocabOnly), 72)]
    [InlineData(nameof(LlamaModelParams.UseExtraBufts), 74)]
    [InlineData(nameof(LlamaModelParams.LoadMtp), 77)]
    public void Model_params_field_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<LlamaModelParams>(field));

    [Theory]
    [InlineData(nameof(LlamaContextParams.NCtx), 0)]
    [InlineData(nameof(LlamaContextParams.NSeqMax), 12)]
    [InlineData(nameof(LlamaContextParams.NRsSeq), 16)]
    [InlineData(nameof(LlamaContextParams.NThreads), 28)]
    [InlineData(nameof(LlamaContextParams.CtxType), 36)]
    [InlineData(nameof(LlamaContextParams.FlashAttnType), 52)]
    [InlineData(nameof(LlamaContextParams.RopeFreqBase), 56)]
    [InlineData(nameof(LlamaContextParams.DefragThold), 84)]
    [InlineData(nameof(LlamaContextParams.CbEval), 88)]
    [InlineData(nameof(LlamaContextParams.TypeK), 104)]
    [InlineData(nameof(LlamaContextParams.AbortCallback), 112)]
    [InlineData(nameof(LlamaContextParams.Embeddings), 128)]
    [InlineData(nameof(LlamaContextParams.KvUnified), 133)]
    [InlineData(nameof(LlamaContextParams.Samplers), 136)]
    [InlineData(nameof(LlamaContextParams.NSamplers), 144)]
    [InlineData(nameof(LlamaContextParams.CtxOther), 152)]
    public void Context_params_field_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<LlamaContextParams>(field));

    [Theory]
    [InlineData(nameof(LlamaBatchNative.NTokens), 0)]
    [InlineData(nameof(LlamaBatchNative.Token), 8)]
    [InlineData(nameof(LlamaBatchNative.Embd), 16)]
    [InlineData(nameof(LlamaBatchNative.Pos), 24)]
    [InlineData(nameof(LlamaBatchNative.NSeqId), 32)]
    [InlineData(nameof(LlamaBatchNative.SeqId), 40)]
    [InlineData(nameof(LlamaBatchNative.Logits), 48)]
    public void Batch_field_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<LlamaBatchNative>(field));

    [Theory]
    [InlineData(nameof(LlamaTokenDataArray.Data), 0)]
    [InlineData(nameof(LlamaTokenDataArray.Size), 8)]
    [InlineData(nameof(LlamaTokenDataArray.Selected), 16)]
    [InlineData(nameof(LlamaTokenDataArray.Sorted), 24)]
    public void Token_data_array_field_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<LlamaTokenDataArray>(field));

    [Theory]
    [InlineData(nameof(LlamaModelQuantizeParams.FType), 4)]
    [InlineData(nameof(LlamaModelQuantizeParams.AllowRequantize), 16)]
    [InlineData(nameof(LlamaModelQuantizeParams.DryRun), 21)]
    [InlineData(nameof(LlamaModelQuantizeParams.Imatrix), 24)]
    [InlineData(nameof(LlamaModelQuantizeParams.MaxBufSize), 56)]
    public void Quantize_params_field_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<LlamaModelQuantizeParams>(field));

    [Fact]
    public void Context_defaults_read_back_through_the_mirror()
    {
        Assert.NotNull(_models.Backend);
        var p = LlamaNative.ContextDefaultParams();
        Assert.Equal(512u, p.NCtx);
        Assert.Equal(2048u, p.NBatch);
        Assert.Equal(512u, p.NUbatch);
        Assert.Equal(1u, p.NSeqMax);
        Assert.Equal(0u, p.NRsSeq);
        Assert.Equal(1u, p.NOutputsMaxPerSeq);
        Assert.Equal(4, p.NThreads);
        Assert.Equal(-1, p.FlashAttnType);
        Assert.Equal(-1.0f, p.YarnExtFactor);
        Assert.Equal(-1.0f, p.DefragThold);
        Assert.Equal((int)GgmlType.F16, p.TypeK);
        Assert.Equal((int)GgmlType.F16, p.TypeV);
        Assert.Equal(0, p.CbEval);
        Assert.Equal(0, p.AbortCallback);
        Assert.Equal([0, 1, 1, 1, 1, 0], new[] { p.Embeddings, p.OffloadKqv, p.NoPerf, p.OpOffload, p.SwaFull, p.KvUnified });
        Assert.Equal(0, p.Samplers);
        Assert.Equal(0u, p.NSamplers);
        Assert.Equal(0, p.CtxOther);
    }

    [Fact]
    public void Model_defaults_read_back_through_the_mirror()
    {
        Assert.NotNull(_models.Backend);
        var p = LlamaNative.ModelDefaultParams();
        Assert.Equal(0, p.Devices);
        Assert.Equal(-1, p.NGpuLayers);
        Assert.Equal(1, p.SplitMode); // LLAMA_SPLIT_MODE_LAYER
        Assert.Equal(-1, p.LoadMode); // LLAMA_LOAD_MODE_AUTO
        Assert.Equal(1, p.LazyMode); // LLAMA_LAZY_MODE_AUTO
        Assert.Equal(0, p.MainGpu);
        Assert.Equal(0, p.KvOverrides);
        Assert.Equal([0, 0, 1, 0, 0, 0], new[] { p.VocabOnly, p.CheckTensors, p.UseExtraBufts, p.NoHost, p.NoAlloc, p.LoadMtp });
    }

    [Fact]
    public void Quantize_and_sampler_chain_defaults_read_back_through_the_mirror()
    {
        Assert.NotNull(_models.Backend);
        var q = LlamaNative.ModelQuantizeDefaultParams();
        Assert.Equal(0, q.NThread);
        Assert.Equal(7, q.FType); // LLAMA_FTYPE_MOSTLY_Q8_0
        Assert.Equal(43, q.OutputTensorType); // GGML_TYPE_COUNT = keep
        Assert.Equal(43, q.TokenEmbeddingType);
        Assert.Equal([0, 1, 0, 0, 0, 0], new[] { q.AllowRequantize, q.QuantizeOutputTensor, q.OnlyCopy, q.Pure, q.KeepSplit, q.DryRun });
        Assert.Equal(0, q.Imatrix);
        Assert.True(q.MaxBufSize > 0);
        Assert.Equal(1, LlamaNative.SamplerChainDefaultParams().NoPerf);
    }

    [Theory]
    [InlineData(nameof(GgmlThreadpoolParams.NThreads), 512)]
    [InlineData(nameof(GgmlThreadpoolParams.Priority), 516)]
    [InlineData(nameof(GgmlThreadpoolParams.Poll), 520)]
    [InlineData(nameof(GgmlThreadpoolParams.StrictCpu), 524)]
    [InlineData(nameof(GgmlThreadpoolParams.Paused), 525)]
    public void Threadpool_params_field_offsets(string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf<GgmlThreadpoolParams>(field));

    [Fact]
    public unsafe void Threadpool_defaults_read_back_through_the_mirror()
    {
        Assert.NotNull(_models.Backend);
        var p = new GgmlThreadpoolParams { Priority = 7, Poll = 7, StrictCpu = 1, Paused = 1 };
        p.CpuMask[0] = 1;
        p.CpuMask[511] = 1;
        GgmlNative.ThreadpoolParamsInit(&p, 3);
        Assert.Equal(3, p.NThreads);
        Assert.Equal(0, p.Priority); // GGML_SCHED_PRIO_NORMAL
        Assert.Equal(50u, p.Poll); // hybrid polling
        Assert.Equal([0, 0, 0, 0], new[] { p.StrictCpu, p.Paused, p.CpuMask[0], p.CpuMask[511] });
    }
}
