using GpuFleet.Worker.LlamaCpp.Native;
using Microsoft.Win32.SafeHandles;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>Owns a <c>llama_model*</c>; freed with llama_model_free once no context references it.</summary>
internal sealed class SafeLlamaModelHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeLlamaModelHandle()
        : base(ownsHandle: true)
    {
    }

    internal SafeLlamaModelHandle(nint handle)
        : base(ownsHandle: true) => SetHandle(handle);

    protected override bool ReleaseHandle()
    {
        LlamaNative.ModelFree(handle);
        return true;
    }
}

/// <summary>
/// Owns a <c>llama_context*</c>. Holds a reference on its model handle so the model cannot be freed
/// while the context lives (the context points into the model's tensors).
/// </summary>
internal sealed class SafeLlamaContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    private readonly SafeLlamaModelHandle? _model;

    public SafeLlamaContextHandle()
        : base(ownsHandle: true)
    {
    }

    internal SafeLlamaContextHandle(nint handle, SafeLlamaModelHandle model)
        : base(ownsHandle: true)
    {
        var added = false;
        model.DangerousAddRef(ref added);
        _model = model;
        SetHandle(handle);
    }

    private readonly List<LlamaThreadPool> _pools = [];

    /// <summary>
    /// Attaches ggml thread pools (for single-token decodes, and for batches) and keeps them alive until the context is
    /// freed: a pool must outlive every graph the context computes on it.
    /// </summary>
    internal void AttachThreadPools(LlamaThreadPool decode, LlamaThreadPool batch)
    {
        foreach (var pool in decode == batch ? [decode] : new[] { decode, batch })
        {
            var added = false;
            pool.DangerousAddRef(ref added);
            _pools.Add(pool);
        }

        LlamaNative.AttachThreadpool(handle, decode.DangerousGetHandle(), batch.DangerousGetHandle());
    }

    protected override bool ReleaseHandle()
    {
        LlamaNative.Free(handle);
        foreach (var pool in _pools)
        {
            pool.DangerousRelease();
        }

        _model?.DangerousRelease();
        return true;
    }
}

/// <summary>Owns a <c>llama_sampler*</c> (usually a chain, which owns the samplers added to it).</summary>
internal sealed class SafeLlamaSamplerHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeLlamaSamplerHandle()
        : base(ownsHandle: true)
    {
    }

    internal SafeLlamaSamplerHandle(nint handle)
        : base(ownsHandle: true) => SetHandle(handle);

    protected override bool ReleaseHandle()
    {
        LlamaNative.SamplerFree(handle);
        return true;
    }
}

/// <summary>Owns a <c>gguf_context*</c> (GGUF metadata being built or read).</summary>
internal sealed class SafeGgufContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeGgufContextHandle()
        : base(ownsHandle: true)
    {
    }

    internal SafeGgufContextHandle(nint handle)
        : base(ownsHandle: true) => SetHandle(handle);

    protected override bool ReleaseHandle()
    {
        GgmlNative.GgufFree(handle);
        return true;
    }
}

/// <summary>Owns a <c>ggml_context*</c> (tensor declarations, or tensor data read from a GGUF).</summary>
internal sealed class SafeGgmlContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public SafeGgmlContextHandle()
        : base(ownsHandle: true)
    {
    }

    internal SafeGgmlContextHandle(nint handle)
        : base(ownsHandle: true) => SetHandle(handle);

    protected override bool ReleaseHandle()
    {
        GgmlNative.Free(handle);
        return true;
    }
}

/// <summary>
/// Owns the arrays of a <c>llama_batch</c> made by llama_batch_init. The handle value is the token
/// array; the whole struct is kept because llama_batch_free takes it by value.
/// </summary>
internal sealed unsafe class SafeLlamaBatchHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    private readonly LlamaBatchNative _batch;

    public SafeLlamaBatchHandle()
        : base(ownsHandle: true)
    {
    }

    internal SafeLlamaBatchHandle(LlamaBatchNative batch)
        : base(ownsHandle: true)
    {
        _batch = batch;
        SetHandle((nint)batch.Token);
    }

    /// <summary>The allocated batch (n_tokens is managed by the owner).</summary>
    internal LlamaBatchNative Batch => _batch;

    protected override bool ReleaseHandle()
    {
        LlamaNative.BatchFree(_batch);
        return true;
    }
}
