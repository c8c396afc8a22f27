using System.Globalization;
using System.Text.Json;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Routing;

/// <summary>The gpufleet.v1 gRPC API through the gateway's gRPC port to real workers, called by @grpc/grpc-js.</summary>
public sealed class GrpcForwardingTests(GrpcForwardingTests.Fleet fleet) : IClassFixture<GrpcForwardingTests.Fleet>
{
    private readonly GatewayProcess _gateway = fleet.Gateway;

    [Fact]
    public async Task A_grpc_js_client_streams_a_generation_through_the_gateway()
    {
        var address = "127.0.0.1:" + _gateway.GrpcPort.ToString(CultureInfo.InvariantCulture);

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
        using var result = await RunClientAsync(_gateway, "generate-twice", "tiny-qwen3");

        Assert.True(result.RootElement.GetProperty("ok").GetBoolean(), result.RootElement.ToString());
        var first = result.RootElement.GetProperty("first").GetProperty("headers");
        var second = result.RootElement.GetProperty("second").GetProperty("headers");
        Assert.Equal(first.GetProperty("x-gpufleet-worker").GetString(), second.GetProperty("x-gpufleet-worker").GetString());
        Assert.Equal("affinity", second.GetProperty("x-gpufleet-route").GetString());
    }

    [Fact]
    public async Task An_unknown_method_through_the_gateway_is_unimplemented()
    {
        // gpufleet.test.v1.InteropTest is a service no worker serves. The worker answers before reading the request
        // body, which raced the forwarding in several ways (a reset, a stream without status): a few calls, to catch them.
        for (var call = 0; call < 5; call++)
        {
            using var result = await RunClientAsync(_gateway, "unimplemented");

            Assert.True(12 == result.RootElement.GetProperty("code").GetInt32(), result.RootElement.ToString());
        }
    }

    [Fact]
    public async Task Server_reflection_through_the_gateway_lists_the_services_in_both_versions()
    {
        using var result = await RunClientAsync(_gateway, "reflection");

        foreach (var version in new[] { "v1alpha", "v1" })
        {
            var listed = result.RootElement.GetProperty(version);
            Assert.True(listed.GetProperty("ok").GetBoolean(), result.RootElement.ToString());
            var services = listed.GetProperty("services").EnumerateArray().Select(s => s.GetString()).ToList();
            Assert.Contains("gpufleet.v1.Inference", services);
            Assert.Contains("gpufleet.v1.WorkerStatusService", services);
        }
    }

    private static async Task<JsonDocument> RunClientAsync(GatewayProcess gateway, string scenario, string tag = "")
    {
        var lines = await NodeProcess.RunAsync("client.js", "127.0.0.1:" + gateway.GrpcPort.ToString(CultureInfo.InvariantCulture), scenario, tag);
        return JsonDocument.Parse(lines[^1]);
    }

    /// <summary>Two workers on the tiny qwen3 model; the tests only call through the gateway.</summary>
    public sealed class Fleet() : GatewayFleet("tiny-qwen3", DemoArchitecture.Qwen3, 2, "--ctx-size", "2048", "--enable-thinking", "false");
}
