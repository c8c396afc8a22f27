using System.Text;
using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>Builds GGUF metadata and tensor declarations through ggml's own gguf API.</summary>
internal sealed unsafe class GgufWriter : IDisposable
{
    public GgufWriter()
    {
        Handle = new SafeGgufContextHandle(GgmlNative.GgufInitEmpty());
        if (Handle.IsInvalid)
        {
            throw new LlamaNativeException("gguf_init_empty failed.");
        }
    }

    public SafeGgufContextHandle Handle { get; }

    private nint Ctx => Handle.DangerousGetHandle();

    public void SetString(string key, string value) => GgmlNative.GgufSetValStr(Ctx, key, value);

    public void SetUInt32(string key, uint value) => GgmlNative.GgufSetValU32(Ctx, key, value);

    public void SetFloat32(string key, float value) => GgmlNative.GgufSetValF32(Ctx, key, value);

    public void SetBool(string key, bool value) => GgmlNative.GgufSetValBool(Ctx, key, value);

    public void SetInt32Array(string key, int[] values)
    {
        fixed (int* p = values)
        {
            GgmlNative.GgufSetArrData(Ctx, key, (int)GgufType.Int32, p, (nuint)values.Length);
        }
    }

    public void SetStringArray(string key, IReadOnlyList<string> values)
    {
        // gguf copies the strings, so the UTF-8 buffers only need to live for the call.
        var encoded = values.Select(v => Encoding.UTF8.GetBytes(v + "\0")).ToArray();
        var handles = encoded.Select(b => System.Runtime.InteropServices.GCHandle.Alloc(b, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
        try
        {
            var pointers = new nint[encoded.Length];
            for (var i = 0; i < encoded.Length; i++)
            {
                pointers[i] = handles[i].AddrOfPinnedObject();
            }

            fixed (nint* p = pointers)
            {
                GgmlNative.GgufSetArrStr(Ctx, key, (byte**)p, (nuint)pointers.Length);
            }
        }
        finally
        {
            foreach (var handle in handles)
            {
                handle.Free();
            }
        }
    }

    /// <summary>Declares tensors (name, shape, type) through a no-alloc ggml context; gguf copies the infos.</summary>
    public void DeclareTensors(IEnumerable<(string Name, long[] Shape, GgmlType Type)> tensors)
    {
        var list = tensors.ToList();
        var init = new GgmlInitParams { MemSize = GgmlNative.TensorOverhead() * (nuint)(list.Count + 8), NoAlloc = 1 };
        using var ggml = new SafeGgmlContextHandle(GgmlNative.Init(init));
        if (ggml.IsInvalid)
        {
            throw new LlamaNativeException("ggml_init failed.");
        }

        var ne = stackalloc long[4];
        foreach (var (name, shape, type) in list)
        {
            for (var d = 0; d < 4; d++)
            {
                ne[d] = d < shape.Length ? shape[d] : 1;
            }

            var tensor = GgmlNative.NewTensor(ggml.DangerousGetHandle(), (int)type, shape.Length, ne);
            GgmlNative.SetName(tensor, name);
            GgmlNative.GgufAddTensor(Ctx, tensor);
        }
    }

    public void Dispose() => Handle.Dispose();
}
