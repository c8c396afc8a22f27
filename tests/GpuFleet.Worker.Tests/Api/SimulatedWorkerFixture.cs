using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>One simulated worker (real API, tokenizer, chat rendering and context checks; no model cost) shared by the bad-input tests.</summary>
public sealed class SimulatedWorkerFixture : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-badinput-").FullName;

    public WorkerProcess Worker { get; private set; } = null!;

    public string ModelId => "tiny-qwen35";

    public HttpClient Http() => new() { BaseAddress = Worker.BaseAddress, Timeout = TestTimeouts.Default };

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, "tiny-qwen35.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen35, DemoModelSize.Tiny));
        Worker = await WorkerProcess.StartAsync(model, "--simulate", "--slots", "4", "--ctx-size", "4096", "--name", "bad-input");
    }

    public async Task DisposeAsync()
    {
        await Worker.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
