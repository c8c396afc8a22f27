using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Testing;

/// <summary>
/// Tiny random-weight models of both architectures, built once per test process through llama.cpp's own
/// API into a temporary folder (nothing is committed), and loaded on first use.
/// </summary>
public sealed class TestModels : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<DemoArchitecture, LlamaModel> _loaded = [];

    public TestModels()
    {
        Backend = LlamaBackend.Initialize();
        Directory = System.IO.Directory.CreateTempSubdirectory("gpufleet-models-").FullName;
    }

    public LlamaBackendInfo Backend { get; }

    public string Directory { get; }

    /// <summary>The path of the tiny model of <paramref name="architecture"/>, building it if needed.</summary>
    public string PathOf(DemoArchitecture architecture)
    {
        lock (_gate)
        {
            var path = Path.Combine(Directory, $"tiny-{architecture.ToString().ToLowerInvariant()}.gguf");
            if (!File.Exists(path))
            {
                DemoModelBuilder.Build(new DemoModelOptions(path, architecture, DemoModelSize.Tiny));
            }

            return path;
        }
    }

    /// <summary>The loaded tiny model of <paramref name="architecture"/>; shared, do not dispose.</summary>
    public LlamaModel Get(DemoArchitecture architecture)
    {
        lock (_gate)
        {
            if (!_loaded.TryGetValue(architecture, out var model))
            {
                model = LlamaModel.Load(PathOf(architecture));
                _loaded[architecture] = model;
            }

            return model;
        }
    }

    public static DemoArchitecture Parse(string architecture) =>
        Enum.Parse<DemoArchitecture>(architecture, ignoreCase: true);

    public void Dispose()
    {
        foreach (var model in _loaded.Values)
        {
            model.Dispose();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}
