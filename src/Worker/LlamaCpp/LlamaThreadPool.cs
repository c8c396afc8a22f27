using GpuFleet.Worker.LlamaCpp.Native;
using Microsoft.Win32.SafeHandles;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>
/// A ggml CPU thread pool: worker threads that live as long as the context they are attached to. Without one, ggml's CPU
/// backend creates its worker threads for every graph it computes and joins them afterwards (a "disposable" pool), so
/// each decode step of every token paid a thread start and exit, and the new threads landed on whichever core the OS
/// chose. llama.cpp's own tools (llama-server through common_init_from_params) attach a pool like this one.
/// </summary>
internal sealed unsafe class LlamaThreadPool : SafeHandleZeroOrMinusOneIsInvalid
{
    private const int CpuDeviceType = 0; // GGML_BACKEND_DEVICE_TYPE_CPU
    private readonly delegate* unmanaged[Cdecl]<nint, void> _free;

    public LlamaThreadPool()
        : base(ownsHandle: true)
    {
    }

    private LlamaThreadPool(nint pool, delegate* unmanaged[Cdecl]<nint, void> free)
        : base(ownsHandle: true)
    {
        _free = free;
        SetHandle(pool);
    }

    /// <summary>
    /// A pool of <paramref name="threads"/> threads (the caller of llama_decode is one of them) with ggml's defaults:
    /// hybrid polling between graphs, inherited CPU affinity and priority; <paramref name="paused"/> starts it asleep
    /// (a pool that waits for its first graph). Null when the CPU backend does not offer pools (then ggml's per-graph
    /// threads remain).
    /// </summary>
    public static LlamaThreadPool? TryCreate(int threads, bool paused)
    {
        var device = GgmlNative.BackendDevByType(CpuDeviceType);
        var registry = device == 0 ? 0 : GgmlNative.BackendDevBackendReg(device);
        if (registry == 0)
        {
            return null;
        }

        var create = (delegate* unmanaged[Cdecl]<GgmlThreadpoolParams*, nint>)GgmlNative.BackendRegGetProcAddress(registry, "ggml_threadpool_new");
        var free = (delegate* unmanaged[Cdecl]<nint, void>)GgmlNative.BackendRegGetProcAddress(registry, "ggml_threadpool_free");
        if (create is null || free is null)
        {
            return null;
        }

        GgmlThreadpoolParams parameters;
        GgmlNative.ThreadpoolParamsInit(&parameters, threads);
        parameters.Paused = paused ? (byte)1 : (byte)0;
        var pool = create(&parameters);
        return pool == 0 ? null : new LlamaThreadPool(pool, free);
    }

    protected override bool ReleaseHandle()
    {
        _free(handle);
        return true;
    }
}
