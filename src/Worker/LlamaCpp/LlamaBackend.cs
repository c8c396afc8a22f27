using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using GpuFleet.Worker.LlamaCpp.Native;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>One compute device that ggml found (CPU, GPU, ...).</summary>
public sealed record LlamaDevice(string Name, string Description, string Type, long FreeBytes, long TotalBytes);

/// <summary>What <see cref="LlamaBackend.Initialize"/> loaded: where from, which backends and devices.</summary>
public sealed record LlamaBackendInfo(string Directory, IReadOnlyList<string> Backends, IReadOnlyList<LlamaDevice> Devices, string SystemInfo)
{
    /// <summary>True when a GPU backend (e.g. CUDA) registered at least one device.</summary>
    public bool HasGpu => Devices.Any(d => d.Type is "GPU" or "IGPU");
}

/// <summary>
/// Process-wide llama.cpp initialisation: loads the libraries of one flavour folder, registers every
/// ggml backend found there (the CPU variant for this CPU, CUDA when present), and routes native log
/// output into an <see cref="ILogger"/>. Safe to call more than once with the same folder.
/// </summary>
public static unsafe class LlamaBackend
{
    private static readonly Lock Gate = new();
    private static LlamaBackendInfo? _info;
    private static ILogger? _nativeLogger;
    private static readonly StringBuilder PendingLine = new();
    private static int _pendingLevel = 2;

    /// <summary>The default folder: <c>llama-native/</c> beside the application.</summary>
    public static string DefaultDirectory => Path.Combine(AppContext.BaseDirectory, "llama-native");

    /// <summary>Loads and initialises llama.cpp; throws <see cref="LlamaNativeException"/> with a clear message on failure.</summary>
    public static LlamaBackendInfo Initialize(string? directory = null, ILoggerFactory? loggerFactory = null)
    {
        directory = Path.GetFullPath(directory ?? DefaultDirectory);
        lock (Gate)
        {
            if (loggerFactory is not null)
            {
                _nativeLogger = loggerFactory.CreateLogger("GpuFleet.Worker.LlamaCpp.Native");
            }

            if (_info is not null)
            {
                if (!string.Equals(_info.Directory, directory, StringComparison.Ordinal))
                {
                    throw new LlamaNativeException($"llama.cpp is already initialised from '{_info.Directory}', not '{directory}'.");
                }

                return _info;
            }

            if (!System.IO.Directory.Exists(directory))
            {
                throw new LlamaNativeException(
                    $"llama.cpp native library folder '{directory}' does not exist. Run scripts/fetch-natives.sh (cpu or cuda) " +
                    "or point LlamaCpp:NativeDirectory at a folder holding the pinned libraries.");
            }

            CheckRelease(directory);
            NativeLibraryResolver.Load(directory);

            // Route logs before anything prints; the callbacks are static and never throw into native code.
            LlamaNative.LogSet(&OnNativeLog, 0);
            GgmlNative.LogSet(&OnNativeLog, 0);

            GgmlNative.BackendLoadAllFromPath(directory);
            LlamaNative.BackendInit();

            var backends = new List<string>();
            for (nuint i = 0; i < GgmlNative.BackendRegCount(); i++)
            {
                backends.Add(Utf8(GgmlNative.BackendRegName(GgmlNative.BackendRegGet(i))));
            }

            if (!backends.Contains("CPU", StringComparer.Ordinal))
            {
                throw new LlamaNativeException(
                    $"No CPU backend registered from '{directory}': no libggml-cpu-*.so in that folder suits this CPU.");
            }

            _info = new LlamaBackendInfo(directory, backends, ReadDevices(), Utf8(LlamaNative.PrintSystemInfo()).Trim());
            return _info;
        }
    }

    /// <summary>Every device with its free and total memory now (for metrics); empty before <see cref="Initialize"/>.</summary>
    public static IReadOnlyList<LlamaDevice> CurrentDevices()
    {
        lock (Gate)
        {
            return _info is null ? [] : ReadDevices();
        }
    }

    private static List<LlamaDevice> ReadDevices()
    {
        var devices = new List<LlamaDevice>();
        for (nuint i = 0; i < GgmlNative.BackendDevCount(); i++)
        {
            var device = GgmlNative.BackendDevGet(i);
            nuint free, total;
            GgmlNative.BackendDevMemory(device, &free, &total);
            devices.Add(new LlamaDevice(
                Utf8(GgmlNative.BackendDevName(device)),
                Utf8(GgmlNative.BackendDevDescription(device)),
                GgmlNative.BackendDevType(device) switch { 0 => "CPU", 1 => "GPU", 2 => "IGPU", 3 => "ACCEL", var t => $"type{t}" },
                (long)free,
                (long)total));
        }

        return devices;
    }

    /// <summary>Free memory of the first GPU now (after models and contexts took theirs), or null without a GPU.</summary>
    public static long? GpuFreeBytes()
    {
        for (nuint i = 0; i < GgmlNative.BackendDevCount(); i++)
        {
            var device = GgmlNative.BackendDevGet(i);
            if (GgmlNative.BackendDevType(device) is 1 or 2)
            {
                nuint free, total;
                GgmlNative.BackendDevMemory(device, &free, &total);
                return (long)free;
            }
        }

        return null;
    }

    /// <summary>The llama.cpp release the bindings mirror; other releases may lay their structs out differently.</summary>
    public const string ExpectedRelease = "v0.5.0";

    // The npm packages record the llama.cpp release they were built from; a folder without that file
    // (a self-built library) is still checked by the exports NativeLibraryResolver requires.
    private static void CheckRelease(string directory)
    {
        var metadata = Path.Combine(directory, "_nlcBuildMetadata.json");
        if (!File.Exists(metadata))
        {
            return;
        }

        string? release;
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(metadata));
            release = json.RootElement.GetProperty("buildOptions").GetProperty("llamaCpp").GetProperty("release").GetString();
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new LlamaNativeException($"'{metadata}' is not valid build metadata; re-fetch the libraries with scripts/fetch-natives.sh.", ex);
        }

        if (!string.Equals(release, ExpectedRelease, StringComparison.Ordinal))
        {
            throw new LlamaNativeException(
                $"The libraries in '{directory}' are llama.cpp {release}, but this worker's bindings mirror {ExpectedRelease}; " +
                "run scripts/fetch-natives.sh to get the pinned build.");
        }
    }

    internal static string Utf8(byte* text) => text is null ? string.Empty : Marshal.PtrToStringUTF8((nint)text) ?? string.Empty;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnNativeLog(int level, byte* text, nint userData)
    {
        // Never let an exception unwind into llama.cpp.
        try
        {
            var message = Utf8(text);
            lock (PendingLine)
            {
                // GGML_LOG_LEVEL_CONT (5) continues the previous line at its level.
                if (level != 5)
                {
                    _pendingLevel = level;
                }

                PendingLine.Append(message);
                if (!message.EndsWith('\n'))
                {
                    return;
                }

                var line = PendingLine.ToString().TrimEnd('\n');
                PendingLine.Clear();
                var logger = _nativeLogger;
                if (logger is null || line.Length == 0)
                {
                    return;
                }

                // llama.cpp's INFO is a per-tensor narrative: keep it at Debug so a worker's log stays readable.
                var logLevel = _pendingLevel switch
                {
                    4 => LogLevel.Error,
                    3 => LogLevel.Warning,
                    2 => LogLevel.Debug,
                    _ => LogLevel.Trace,
                };
                LlamaLog.NativeMessage(logger, logLevel, line);
            }
        }
#pragma warning disable CA1031 // A native callback must swallow everything; there is no caller to throw to.
        catch (Exception)
        {
        }
#pragma warning restore CA1031
    }
}
