using System.Globalization;
using System.Text.Json;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Routing;

/// <summary>The gpufleet.v1 gRPC API through the gateway's gRPC port to real workers, called by @grpc/grpc-js.</summary>
public sealed class GrpcForwardingTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-grpc-gw-").FullName;
    private readonly List<WorkerProcess> _workers = [];

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, "tiny-qwen3.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen3, DemoModelSize.Tiny));
        _workers.AddRange(await Task.WhenAll(Enumerable.Range(0, 2).Select(i =>
            WorkerProcess.StartAsync(model, "--name", $"w{i}", "--ctx-size", "2048", "--enable-thinking", "false"))));
    }

    [Fact]
    public async Task A_grpc_js_client_streams_a_generation_through_the_gateway()
    {
        await using var gateway = await GatewayProcess.StartAsync([.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);
        var address = "127.0.0.1:" + gateway.GrpcPort.ToString(CultureInfo.InvariantCulture);

        var lines = await NodeProcess.RunAsync("client.js", address, "generate", "tiny-qwen3");
        using var result = JsonDocument.Parse(lines[^1]);

        Assert.True(result.RootElement.GetProperty("ok").GetBoolean(), result.RootElement.ToString());
        var messages = result.RootElement.GetProperty("messages").EnumerateArray().ToList();
        var final = messages[^1].GetProperty("final");
        Assert.True(final.GetProperty("usage").GetProperty("completion_tokens").GetInt32() is > 0 and <= 3, final.ToString());
    }

    public async Task DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
