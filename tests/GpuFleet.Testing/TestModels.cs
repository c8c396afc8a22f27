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
    private readonly Dictionary<(DemoArchitecture, bool), LlamaModel> _loaded = [];

    public TestModels()
    {
        Backend = LlamaBackend.Initialize();
        Directory = System.IO.Directory.CreateTempSubdirectory("gpufleet-models-").FullName;
    }

    public LlamaBackendInfo Backend { get; }

    public string Directory { get; }

    /// <summary>
    /// The path of the tiny model of <paramref name="architecture"/>, building it if needed: with the small byte-level
    /// tokenizer, or with the real Qwen3.5 tokenizer and chat template (<paramref name="qwenTokenizer"/>; ~46 MB, as
    /// end-to-end tests need prompts that cost what they cost on the real model).
    /// </summary>
    public string PathOf(DemoArchitecture architecture, bool qwenTokenizer = false)
    {
        lock (_gate)
        {
            var path = Path.Combine(Directory, $"tiny-{architecture.ToString().ToLowerInvariant()}{(qwenTokenizer ? "-qwen-tokenizer" : "")}.gguf");
            if (!File.Exists(path))
            {
                DemoModelBuilder.Build(new DemoModelOptions(path, architecture, DemoModelSize.Tiny)
                {
                    Tokenizer = qwenTokenizer ? QwenTokenizer : null,
                });
            }

            return path;
        }
    }

    /// <summary>The real tokenizer's files, fetched by scripts/fetch-tokenizer.sh (test.sh runs it) into .natives/tokenizer.</summary>
    public static QwenTokenizerFiles QwenTokenizer
    {
        get
        {
            var files = QwenTokenizerFiles.InDirectory(RepositoryPaths.Of(".natives", "tokenizer"));
            return File.Exists(files.VocabularyPath) && File.Exists(files.ChatTemplatePath)
                ? files
                : throw new FileNotFoundException($"The Qwen tokenizer is missing from {Path.GetDirectoryName(files.VocabularyPath)}: run scripts/fetch-tokenizer.sh (test.sh does).");
        }
    }

    /// <summary>The loaded tiny model of <paramref name="architecture"/>; shared, do not dispose.</summary>
    public LlamaModel Get(DemoArchitecture architecture, bool qwenTokenizer = false)
    {
        lock (_gate)
        {
            if (!_loaded.TryGetValue((architecture, qwenTokenizer), out var model))
            {
                model = LlamaModel.Load(PathOf(architecture, qwenTokenizer));
                _loaded[(architecture, qwenTokenizer)] = model;
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
