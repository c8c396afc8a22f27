using System.Net.Http.Headers;
using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Forwarding;

/// <summary>
/// A gateway with API keys in front of one simulated worker, shared by the bad-input tests. The key has a
/// tokens-per-minute limit, so every request also goes through the limit's arithmetic.
/// </summary>
public sealed class KeyedGatewayFixture : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-gw-badinput-").FullName;

    public WorkerProcess Worker { get; private set; } = null!;

    internal GatewayProcess Gateway { get; private set; } = null!;

    public string ModelId => "tiny-qwen35";

    public HttpClient Http()
    {
        var http = new HttpClient { BaseAddress = Gateway.BaseAddress, Timeout = TestTimeouts.Default };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        return http;
    }

    private string Key { get; set; } = "";

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, "tiny-qwen35.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen35, DemoModelSize.Tiny));
        Worker = await WorkerProcess.StartAsync(model, "--simulate", "--slots", "4", "--ctx-size", "4096", "--name", "w0");
        var keys = Path.Combine(_directory, "keys.json");
        var output = new StringWriter();
        Assert.Equal(0, await KeysCommand.RunAsync(["add", "fuzz", "--tpm", "1000000", "--keys", keys], output, TextWriter.Null));
        Key = output.ToString().Trim();
        Gateway = await GatewayProcess.StartAsync("--worker", Worker.BaseAddress.ToString().TrimEnd('/'), "--keys", keys);
        using var http = Http();
        // Available means the worker's status (with its context size) has reached the gateway.
        await Gateway.WaitForWorkersAsync(http, view => view.Count == 1 && view[0].Available);
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Worker.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
