using System.Reflection;
using System.Runtime.InteropServices;

namespace GpuFleet.Worker.LlamaCpp.Native;

/// <summary>
/// Maps the logical library names of the bindings ("llama", "ggml", "ggml-base") to the fetched files of
/// one flavour folder (the CPU and CUDA packages name their files differently, e.g. libllama.v0.5.0.so
/// and libllama.cuda.v0.5.0.so). Loaded by full path in dependency order; their RUNPATH is $ORIGIN.
/// </summary>
internal static class NativeLibraryResolver
{
    private static readonly Lock Gate = new();
    private static string? _directory;
    private static Dictionary<string, nint>? _handles;

    /// <summary>Loads the three core libraries from <paramref name="directory"/> and installs the resolver.</summary>
    public static void Load(string directory)
    {
        lock (Gate)
        {
            if (_handles is not null)
            {
                if (!string.Equals(_directory, directory, StringComparison.Ordinal))
                {
                    throw new LlamaNativeException(
                        $"llama.cpp is already loaded from '{_directory}'; one process can load one native flavour only.");
                }

                return;
            }

            var baseLib = FindOne(directory, "libggml-base.so", "libggml-base*.so", []);
            var ggmlLib = FindOne(directory, null, "libggml.*so", ["libggml-base", "libggml-cpu", "libggml-cuda"]);
            var llamaLib = FindOne(directory, null, "libllama.*so", ["libllama-common"]);

            var handles = new Dictionary<string, nint>(StringComparer.Ordinal);
            foreach (var (name, path) in new[] { (GgmlNative.Base, baseLib), (GgmlNative.Ggml, ggmlLib), (LlamaNative.Library, llamaLib) })
            {
                if (!NativeLibrary.TryLoad(path, out var handle))
                {
                    throw new LlamaNativeException(
                        $"Could not load '{path}'. The file exists but the dynamic loader refused it " +
                        "(wrong CPU architecture, missing system libraries such as libstdc++ or, for CUDA, libcudart.so.13).");
                }

                handles[name] = handle;
            }

            if (!NativeLibrary.TryGetExport(handles[LlamaNative.Library], "llama_model_init_from_user", out _)
                || !NativeLibrary.TryGetExport(handles[LlamaNative.Library], "llama_memory_seq_rm", out _))
            {
                throw new LlamaNativeException(
                    $"'{llamaLib}' does not export the llama.cpp v0.5.0 API this worker was built against; " +
                    "re-fetch the pinned libraries with scripts/fetch-natives.sh.");
            }

            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
            _handles = handles;
            _directory = directory;
        }
    }

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        var handles = _handles;
        return handles is not null && handles.TryGetValue(libraryName, out var handle) ? handle : 0;
    }

    private static string FindOne(string directory, string? exactName, string pattern, string[] excludedPrefixes)
    {
        if (exactName is not null && File.Exists(Path.Combine(directory, exactName)))
        {
            return Path.Combine(directory, exactName);
        }

        var matches = Directory.GetFiles(directory, pattern)
            .Where(path => !excludedPrefixes.Any(prefix => Path.GetFileName(path).StartsWith(prefix, StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal)
            .ToArray();
        return matches.Length switch
        {
            1 => matches[0],
            0 => throw new LlamaNativeException(
                $"No '{pattern}' in '{directory}': the llama.cpp native libraries are missing. Run scripts/fetch-natives.sh."),
            _ => throw new LlamaNativeException(
                $"Several '{pattern}' files in '{directory}' ({string.Join(", ", matches.Select(Path.GetFileName))}); keep one flavour per folder."),
        };
    }
}
