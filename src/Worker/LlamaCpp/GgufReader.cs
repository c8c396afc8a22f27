using System.Runtime.InteropServices;
using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>Reads a GGUF file's metadata (no tensor data) through ggml's own gguf API.</summary>
internal sealed unsafe class GgufReader : IDisposable
{
    private readonly SafeGgufContextHandle _handle;
    private readonly string _path;

    public GgufReader(string path)
    {
        _path = path;
        _handle = new SafeGgufContextHandle(GgmlNative.GgufInitFromFile(path, new GgufInitParams { NoAlloc = 1, Ctx = 0 }));
        if (_handle.IsInvalid)
        {
            throw new LlamaNativeException($"gguf_init_from_file could not read '{path}' (missing, or not a GGUF file).");
        }
    }

    private nint Ctx => _handle.DangerousGetHandle();

    public bool Contains(string key) => GgmlNative.GgufFindKey(Ctx, key) >= 0;

    public string GetString(string key) =>
        Marshal.PtrToStringUTF8((nint)GgmlNative.GgufGetValStr(Ctx, Find(key, GgufType.String)))!;

    public uint GetUInt32(string key) => GgmlNative.GgufGetValU32(Ctx, Find(key, GgufType.UInt32));

    public string[] GetStringArray(string key)
    {
        var id = FindArray(key, GgufType.String);
        var values = new string[(int)GgmlNative.GgufGetArrN(Ctx, id)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Marshal.PtrToStringUTF8((nint)GgmlNative.GgufGetArrStr(Ctx, id, (nuint)i))!;
        }

        return values;
    }

    public int[] GetInt32Array(string key)
    {
        var id = FindArray(key, GgufType.Int32);
        return new ReadOnlySpan<int>(GgmlNative.GgufGetArrData(Ctx, id), (int)GgmlNative.GgufGetArrN(Ctx, id)).ToArray();
    }

    public void Dispose() => _handle.Dispose();

    private long Find(string key, GgufType type)
    {
        // gguf asserts (aborts the process) on a type mismatch, so every read checks the type first.
        var id = GgmlNative.GgufFindKey(Ctx, key);
        if (id < 0)
        {
            throw new InvalidDataException($"'{_path}' has no '{key}'.");
        }

        var actual = (GgufType)GgmlNative.GgufGetKvType(Ctx, id);
        return actual == type ? id : throw new InvalidDataException($"'{_path}': '{key}' is {actual}, expected {type}.");
    }

    private long FindArray(string key, GgufType elementType)
    {
        var id = Find(key, GgufType.Array);
        var actual = (GgufType)GgmlNative.GgufGetArrType(Ctx, id);
        return actual == elementType ? id : throw new InvalidDataException($"'{_path}': '{key}' is an array of {actual}, expected {elementType}.");
    }
}
