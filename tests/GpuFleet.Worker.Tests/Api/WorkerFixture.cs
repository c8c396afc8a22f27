using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>One real worker process on a tiny qwen35 model, shared by the API tests of a class.</summary>
public sealed class WorkerFixture : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-api-").FullName;

    public WorkerProcess Worker { get; private set; } = null!;

    public string ModelPath => Path.Combine(_directory, "tiny-qwen35.gguf");

    public string ModelId => "tiny-qwen35";

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        DemoModelBuilder.Build(new DemoModelOptions(ModelPath, DemoArchitecture.Qwen35, DemoModelSize.Tiny));
        // 4096 tokens per slot: the Qwen tool preamble alone is ~1,000 byte-level tokens of the demo tokenizer.
        // Thinking off by default keeps replies in 'content' (a random model rarely closes a <think> block).
        Worker = await WorkerProcess.StartAsync(ModelPath, "--slots", "4", "--ctx-size", "4096", "--enable-thinking", "false", "--name", "api-test");
    }

    public async Task DisposeAsync()
    {
        await Worker.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
