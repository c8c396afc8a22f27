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

    [Fact]
    public async Task A_grpc_generate_call_through_the_gateway_gets_prefix_affinity_like_an_openai_request()
    {
        await using var gateway = await GatewayProcess.StartAsync([.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);

        using var result = await RunClientAsync(gateway, "generate-twice", "tiny-qwen3");

        Assert.True(result.RootElement.GetProperty("ok").GetBoolean(), result.RootElement.ToString());
        var first = result.RootElement.GetProperty("first").GetProperty("headers");
        var second = result.RootElement.GetProperty("second").GetProperty("headers");
        Assert.Equal(first.GetProperty("x-gpufleet-worker").GetString(), second.GetProperty("x-gpufleet-worker").GetString());
        Assert.Equal("affinity", second.GetProperty("x-gpufleet-route").GetString());
    }

    [Fact]
    public async Task An_unknown_method_through_the_gateway_is_unimplemented()
    {
        await using var gateway = await StartGatewayAsync();

        // gpufleet.test.v1.InteropTest is a service no worker serves. The worker answers before reading the request
        // body, which raced the forwarding in several ways (a reset, a stream without status): a few calls, to catch them.
        for (var call = 0; call < 5; call++)
        {
            using var result = await RunClientAsync(gateway, "unimplemented");

            Assert.True(12 == result.RootElement.GetProperty("code").GetInt32(), result.RootElement.ToString());
        }
    }

    [Fact]
    public async Task Server_reflection_through_the_gateway_lists_the_services_in_both_versions()
    {
        await using var gateway = await StartGatewayAsync();

        using var result = await RunClientAsync(gateway, "reflection");

        foreach (var version in new[] { "v1alpha", "v1" })
        {
            var listed = result.RootElement.GetProperty(version);
            Assert.True(listed.GetProperty("ok").GetBoolean(), result.RootElement.ToString());
            var services = listed.GetProperty("services").EnumerateArray().Select(s => s.GetString()).ToList();
            Assert.Contains("gpufleet.v1.Inference", services);
            Assert.Contains("gpufleet.v1.WorkerStatusService", services);
        }
    }

    private async Task<GatewayProcess> StartGatewayAsync()
    {
        var gateway = await GatewayProcess.StartAsync([.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 2);
        return gateway;
    }

    private static async Task<JsonDocument> RunClientAsync(GatewayProcess gateway, string scenario, string tag = "")
    {
        var lines = await NodeProcess.RunAsync("client.js", "127.0.0.1:" + gateway.GrpcPort.ToString(CultureInfo.InvariantCulture), scenario, tag);
        return JsonDocument.Parse(lines[^1]);
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
