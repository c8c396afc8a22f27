using System.Text.Json;
using Grpc.Core;

namespace GpuFleet.Contracts.Tests.Interop;

/// <summary>A real grpc-js client (tests/interop/node/client.js) against Grpc.AspNetCore on Kestrel h2c, set up as the worker's.</summary>
public sealed class NodeClientInteropTests : IAsyncLifetime
{
    private InteropTestServer _server = null!;

    public async Task InitializeAsync() => _server = await InteropTestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Unary_RoundTripsTheMessage_AndTheDeadlineArrives()
    {
        var result = await RunAsync("unary");

        Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
        var response = result.GetProperty("response");
        Assert.Equal("héllo ✓ 100%", response.GetProperty("text").GetString());
        Assert.Matches("^[0-9]{1,8}[HMSmun]$", response.GetProperty("deadline_seen").GetString());
    }

    [Fact]
    public async Task ServerStreaming_DeliversEveryMessageInOrder()
    {
        var result = await RunAsync("stream");

        Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.Equal([1, 2, 3, 4, 5], result.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("value").GetInt32()));
    }

    [Fact]
    public async Task Deadline_ServerTooSlow_IsDeadlineExceeded_AndTheHandlerSeesIt()
    {
        var tag = Guid.NewGuid().ToString("N");

        var result = await RunAsync("deadline", tag);

        Assert.True((int)StatusCode.DeadlineExceeded == result.GetProperty("code").GetInt32(), result.ToString());
        Assert.True(_server.Service.HasStarted(tag), "the call reached the server before its deadline");

        // grpc-js resets the stream at its own deadline as our server's timer fires: either way the handler stopped.
        Assert.Contains(await _server.Service.OutcomeAsync(tag), new[] { "deadline", "cancelled" });
    }

    [Fact]
    public async Task Cancellation_MidStream_IsObservedByTheServerHandler()
    {
        var tag = Guid.NewGuid().ToString("N");

        var result = await RunAsync("cancel", tag);

        Assert.Equal((int)StatusCode.Cancelled, result.GetProperty("code").GetInt32());
        Assert.True(result.GetProperty("messages").GetArrayLength() >= 3);
        Assert.Equal("cancelled", await _server.Service.OutcomeAsync(tag));
    }

    [Fact]
    public async Task ErrorStatus_AndItsNonAsciiMessage_ReachGrpcJs()
    {
        var result = await RunAsync("error");

        Assert.Equal((int)StatusCode.NotFound, result.GetProperty("code").GetInt32());
        Assert.Equal("nøt føund: 100% ✓\tdone", result.GetProperty("details").GetString());
    }

    [Fact]
    public async Task ErrorAfterMessages_ReachesGrpcJsAfterTheMessages()
    {
        var result = await RunAsync("stream-error");

        Assert.Equal((int)StatusCode.FailedPrecondition, result.GetProperty("code").GetInt32());
        Assert.Equal("stopped after 3", result.GetProperty("details").GetString());
        Assert.Equal(3, result.GetProperty("messages").GetArrayLength());
    }

    [Fact]
    public async Task HandlerBug_IsUnknown_WithoutTheExceptionText()
    {
        var result = await RunAsync("unexpected");

        // Grpc.AspNetCore's answer to an exception that is not an RpcException (as grpc-java's and grpc-go's).
        Assert.Equal((int)StatusCode.Unknown, result.GetProperty("code").GetInt32());
        Assert.DoesNotContain(InteropTestService.SecretExceptionText, result.GetProperty("details").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownMethod_IsUnimplemented()
    {
        var result = await RunAsync("unimplemented");

        Assert.Equal((int)StatusCode.Unimplemented, result.GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task RequestOverTheServerLimit_IsResourceExhausted()
    {
        var result = await RunAsync("request-too-large");

        Assert.Equal((int)StatusCode.ResourceExhausted, result.GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task HealthCheck_StandardServiceAnswersGrpcJs()
    {
        var result = await RunAsync("health");

        var server = result.GetProperty("server");
        Assert.True(server.GetProperty("ok").GetBoolean(), result.ToString());
        Assert.Equal("SERVING", server.GetProperty("response").GetProperty("status").GetString());
        Assert.Equal((int)StatusCode.NotFound, result.GetProperty("unknown").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Reflection_ListsTheServicesToGrpcJs_InBothVersions()
    {
        var result = await RunAsync("reflection");

        foreach (var version in new[] { "v1alpha", "v1" })
        {
            var listed = result.GetProperty(version);
            Assert.True(listed.GetProperty("ok").GetBoolean(), result.ToString());
            var services = listed.GetProperty("services").EnumerateArray().Select(s => s.GetString()).ToList();
            Assert.Contains("gpufleet.test.v1.InteropTest", services);
            Assert.Contains("gpufleet.v1.Inference", services);
            Assert.Contains("grpc.health.v1.Health", services);
        }
    }

    [Fact]
    public async Task Generate_OnTheRealContract_CarriesOneofsAndOptionals()
    {
        var result = await RunAsync("generate");

        Assert.True(result.GetProperty("ok").GetBoolean(), result.ToString());
        var messages = result.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(3, messages.Count);
        Assert.Equal("delta", messages[0].GetProperty("kind").GetString());
        Assert.Equal(
            "chat:1:user:1:False|temperature=0.5|top_p=unset|seed=42|max_tokens=3|stop=1|model=demo",
            messages[0].GetProperty("delta").GetProperty("text").GetString());
        Assert.Equal("call_1", messages[1].GetProperty("delta").GetProperty("tool_calls")[0].GetProperty("id").GetString());
        var final = messages[2].GetProperty("final");
        Assert.Equal("tool_calls", final.GetProperty("finish_reason").GetString());
        Assert.Equal(40.25, final.GetProperty("usage").GetProperty("total_ms").GetDouble());
    }

    private async Task<JsonElement> RunAsync(string scenario, string tag = "")
    {
        var lines = await NodeProcess.RunAsync("client.js", _server.HostPort, scenario, tag);
        var json = Assert.Single(lines, line => line.StartsWith('{'));
        return JsonDocument.Parse(json).RootElement;
    }
}
