using System.Runtime.InteropServices;

namespace GpuFleet.Worker.LlamaCpp.Native;

/// <summary>
/// The parts of ggml (backend registry, tensors) and gguf (metadata) that the worker needs: backend
/// discovery at start and building demo models through llama.cpp's own API.
/// </summary>
internal static unsafe partial class GgmlNative
{
    public const string Base = "ggml-base";
    public const string Ggml = "ggml";

    // ---- backend registry (libggml)
    [LibraryImport(Ggml, EntryPoint = "ggml_backend_load_all_from_path", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void BackendLoadAllFromPath(string directory);

    [LibraryImport(Ggml, EntryPoint = "ggml_backend_reg_count")]
    public static partial nuint BackendRegCount();

    [LibraryImport(Ggml, EntryPoint = "ggml_backend_reg_get")]
    public static partial nint BackendRegGet(nuint index);

    [LibraryImport(Base, EntryPoint = "ggml_backend_reg_name")]
    public static partial byte* BackendRegName(nint registry);

    [LibraryImport(Ggml, EntryPoint = "ggml_backend_dev_count")]
    public static partial nuint BackendDevCount();

    [LibraryImport(Ggml, EntryPoint = "ggml_backend_dev_get")]
    public static partial nint BackendDevGet(nuint index);

    [LibraryImport(Base, EntryPoint = "ggml_backend_dev_name")]
    public static partial byte* BackendDevName(nint device);

    [LibraryImport(Base, EntryPoint = "ggml_backend_dev_description")]
    public static partial byte* BackendDevDescription(nint device);

    [LibraryImport(Base, EntryPoint = "ggml_backend_dev_type")]
    public static partial int BackendDevType(nint device);

    [LibraryImport(Base, EntryPoint = "ggml_backend_dev_memory")]
    public static partial void BackendDevMemory(nint device, nuint* free, nuint* total);

    [LibraryImport(Ggml, EntryPoint = "ggml_backend_dev_by_type")]
    public static partial nint BackendDevByType(int type);

    [LibraryImport(Base, EntryPoint = "ggml_backend_dev_backend_reg")]
    public static partial nint BackendDevBackendReg(nint device);

    [LibraryImport(Base, EntryPoint = "ggml_backend_reg_get_proc_address", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint BackendRegGetProcAddress(nint registry, string name);

    // ---- CPU thread pools: created through the CPU backend's own entry points (the CPU variant library that
    // ggml_backend_load_all chose exports them; libggml-base holds only the parameter helpers).
    [LibraryImport(Base, EntryPoint = "ggml_threadpool_params_init")]
    public static partial void ThreadpoolParamsInit(GgmlThreadpoolParams* parameters, int threads);

    // ---- logging and tensors (libggml-base)
    [LibraryImport(Base, EntryPoint = "ggml_log_set")]
    public static partial void LogSet(delegate* unmanaged[Cdecl]<int, byte*, nint, void> callback, nint userData);

    [LibraryImport(Base, EntryPoint = "ggml_init")]
    public static partial nint Init(GgmlInitParams initParams);

    [LibraryImport(Base, EntryPoint = "ggml_free")]
    public static partial void Free(nint context);

    [LibraryImport(Base, EntryPoint = "ggml_tensor_overhead")]
    public static partial nuint TensorOverhead();

    [LibraryImport(Base, EntryPoint = "ggml_new_tensor")]
    public static partial nint NewTensor(nint context, int type, int nDims, long* ne);

    [LibraryImport(Base, EntryPoint = "ggml_set_name", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint SetName(nint tensor, string name);

    [LibraryImport(Base, EntryPoint = "ggml_get_name")]
    public static partial byte* GetName(nint tensor);

    [LibraryImport(Base, EntryPoint = "ggml_get_tensor")]
    public static partial nint GetTensor(nint context, byte* name);

    [LibraryImport(Base, EntryPoint = "ggml_nbytes")]
    public static partial nuint NBytes(nint tensor);

    [LibraryImport(Base, EntryPoint = "ggml_nelements")]
    public static partial long NElements(nint tensor);

    [LibraryImport(Base, EntryPoint = "ggml_backend_tensor_set")]
    public static partial void BackendTensorSet(nint tensor, void* data, nuint offset, nuint size);

    // ---- gguf metadata (libggml-base)
    [LibraryImport(Base, EntryPoint = "gguf_init_empty")]
    public static partial nint GgufInitEmpty();

    [LibraryImport(Base, EntryPoint = "gguf_init_from_file", StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint GgufInitFromFile(string path, GgufInitParams initParams);

    [LibraryImport(Base, EntryPoint = "gguf_free")]
    public static partial void GgufFree(nint context);

    [LibraryImport(Base, EntryPoint = "gguf_get_n_tensors")]
    public static partial long GgufGetNTensors(nint context);

    [LibraryImport(Base, EntryPoint = "gguf_get_tensor_name")]
    public static partial byte* GgufGetTensorName(nint context, long tensorId);

    [LibraryImport(Base, EntryPoint = "gguf_find_key", StringMarshalling = StringMarshalling.Utf8)]
    public static partial long GgufFindKey(nint context, string key);

    [LibraryImport(Base, EntryPoint = "gguf_get_val_str")]
    public static partial byte* GgufGetValStr(nint context, long keyId);

    [LibraryImport(Base, EntryPoint = "gguf_get_val_u32")]
    public static partial uint GgufGetValU32(nint context, long keyId);

    [LibraryImport(Base, EntryPoint = "gguf_get_kv_type")]
    public static partial int GgufGetKvType(nint context, long keyId);

    [LibraryImport(Base, EntryPoint = "gguf_get_arr_type")]
    public static partial int GgufGetArrType(nint context, long keyId);

    [LibraryImport(Base, EntryPoint = "gguf_get_arr_n")]
    public static partial nuint GgufGetArrN(nint context, long keyId);

    [LibraryImport(Base, EntryPoint = "gguf_get_arr_data")]
    public static partial void* GgufGetArrData(nint context, long keyId);

    [LibraryImport(Base, EntryPoint = "gguf_get_arr_str")]
    public static partial byte* GgufGetArrStr(nint context, long keyId, nuint index);

    [LibraryImport(Base, EntryPoint = "gguf_set_kv")]
    public static partial void GgufSetKv(nint destination, nint source);

    [LibraryImport(Base, EntryPoint = "gguf_set_val_str", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void GgufSetValStr(nint context, string key, string value);

    [LibraryImport(Base, EntryPoint = "gguf_set_val_u32", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void GgufSetValU32(nint context, string key, uint value);

    [LibraryImport(Base, EntryPoint = "gguf_set_val_f32", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void GgufSetValF32(nint context, string key, float value);

    [LibraryImport(Base, EntryPoint = "gguf_set_val_bool", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void GgufSetValBool(nint context, string key, [MarshalAs(UnmanagedType.U1)] bool value);

    [LibraryImport(Base, EntryPoint = "gguf_set_arr_data", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void GgufSetArrData(nint context, string key, int type, void* data, nuint count);

    [LibraryImport(Base, EntryPoint = "gguf_set_arr_str", StringMarshalling = StringMarshalling.Utf8)]
    public static partial void GgufSetArrStr(nint context, string key, byte** strings, nuint count);

    [LibraryImport(Base, EntryPoint = "gguf_add_tensor")]
    public static partial void GgufAddTensor(nint context, nint tensor);

    [LibraryImport(Base, EntryPoint = "gguf_write_to_file", StringMarshalling = StringMarshalling.Utf8)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool GgufWriteToFile(nint context, string path, [MarshalAs(UnmanagedType.U1)] bool onlyMeta);
}
