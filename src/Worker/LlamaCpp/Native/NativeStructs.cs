using System.Runtime.InteropServices;

namespace GpuFleet.Worker.LlamaCpp.Native;

// Blittable mirrors of the structs in llama.h / ggml.h / gguf.h of llama.cpp release v0.5.0
// (node-llama-cpp 3.22.1). C bools are bytes; enums are 4-byte ints. Layouts are pinned by AbiTests.

/// <summary>Mirror of <c>struct llama_model_params</c> (80 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaModelParams
{
    public nint Devices;
    public nint TensorBuftOverrides;
    public int NGpuLayers;
    public int SplitMode;
    public int LoadMode;
    public int LazyMode;
    public int MainGpu;
    public nint TensorSplit;
    public nint ProgressCallback;
    public nint ProgressCallbackUserData;
    public nint KvOverrides;
    public byte VocabOnly;
    public byte CheckTensors;
    public byte UseExtraBufts;
    public byte NoHost;
    public byte NoAlloc;
    public byte LoadMtp;
}

/// <summary>Mirror of <c>struct llama_context_params</c> (160 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaContextParams
{
    public uint NCtx;
    public uint NBatch;
    public uint NUbatch;
    public uint NSeqMax;
    public uint NRsSeq;
    public uint NOutputsMax;
    public uint NOutputsMaxPerSeq;
    public int NThreads;
    public int NThreadsBatch;
    public int CtxType;
    public int RopeScalingType;
    public int PoolingType;
    public int AttentionType;
    public int FlashAttnType;
    public float RopeFreqBase;
    public float RopeFreqScale;
    public float YarnExtFactor;
    public float YarnAttnFactor;
    public float YarnBetaFast;
    public float YarnBetaSlow;
    public uint YarnOrigCtx;
    public float DefragThold;
    public nint CbEval;
    public nint CbEvalUserData;
    public int TypeK;
    public int TypeV;
    public nint AbortCallback;
    public nint AbortCallbackData;
    public byte Embeddings;
    public byte OffloadKqv;
    public byte NoPerf;
    public byte OpOffload;
    public byte SwaFull;
    public byte KvUnified;
    public nint Samplers;
    public nuint NSamplers;
    public nint CtxOther;
}

/// <summary>Mirror of <c>struct llama_batch</c> (56 bytes); the arrays are owned by llama_batch_init/free.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LlamaBatchNative
{
    public int NTokens;
    public int* Token;
    public float* Embd;
    public int* Pos;
    public int* NSeqId;
    public int** SeqId;
    public sbyte* Logits;
}

/// <summary>Mirror of <c>struct llama_model_quantize_params</c> (64 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaModelQuantizeParams
{
    public int NThread;
    public int FType;
    public int OutputTensorType;
    public int TokenEmbeddingType;
    public byte AllowRequantize;
    public byte QuantizeOutputTensor;
    public byte OnlyCopy;
    public byte Pure;
    public byte KeepSplit;
    public byte DryRun;
    public nint Imatrix;
    public nint KvOverrides;
    public nint TensorTypeOverrides;
    public nint PruneLayers;
    public nuint MaxBufSize;
}

/// <summary>Mirror of <c>struct llama_sampler_chain_params</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaSamplerChainParams
{
    public byte NoPerf;
}

/// <summary>Mirror of <c>struct llama_token_data</c> (12 bytes): one sampling candidate.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaTokenData
{
    public int Id;
    public float Logit;
    public float P;
}

/// <summary>Mirror of <c>struct llama_token_data_array</c> (32 bytes); samplers reorder and shrink it in place.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LlamaTokenDataArray
{
    public LlamaTokenData* Data;
    public nuint Size;
    public long Selected;
    public byte Sorted;
}

/// <summary>Mirror of <c>struct llama_chat_message</c>: two UTF-8 C strings.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LlamaChatMessage
{
    public byte* Role;
    public byte* Content;
}

/// <summary>Mirror of <c>struct ggml_init_params</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GgmlInitParams
{
    public nuint MemSize;
    public nint MemBuffer;
    public byte NoAlloc;
}

/// <summary>Mirror of <c>struct gguf_init_params</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GgufInitParams
{
    public byte NoAlloc;
    /// <summary><c>struct ggml_context **</c>: receives the tensor-data context when not null.</summary>
    public nint Ctx;
}

/// <summary>ggml tensor element types used here (enum ggml_type).</summary>
internal enum GgmlType
{
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
}

/// <summary>GGUF metadata value types (enum gguf_type).</summary>
internal enum GgufType
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>llama_ftype values used when quantizing demo models.</summary>
internal enum LlamaFileType
{
    MostlyF16 = 1,
    MostlyQ8_0 = 7,
    MostlyQ4KM = 15,
}

/// <summary>
/// Mirror of <c>struct ggml_threadpool_params</c> (528 bytes): a CPU mask of GGML_MAX_N_THREADS (512) flags, then the
/// thread count, priority, polling level and two flags. Filled by ggml_threadpool_params_init.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct GgmlThreadpoolParams
{
    public fixed byte CpuMask[512];
    public int NThreads;
    public int Priority;
    public uint Poll;
    public byte StrictCpu;
    public byte Paused;
}
