using Google.Protobuf;
using GpuFleet.Contracts.Grpc;

namespace GpuFleet.Contracts.Tests.Interop;

/// <summary>Our client against a real grpc-js server (tests/interop/node/server.js), over h2c.</summary>
public sealed class NodeServerInteropTests : IClassFixture<NodeServerInteropTests.NodeServer>
{
    private const string EchoMethod = "/gpufleet.test.v1.InteropTest/Echo";
    private const string CountMethod = "/gpufleet.test.v1.InteropTest/Count";
    private const string UnmappedMethod = "/gpufleet.test.v1.InteropTest/Unmapped";

    private readonly NodeProcess _node;
    private readonly GrpcCallInvoker _client;

    public NodeServerInteropTests(NodeServer server)
    {
        _node = server.Process;
        _client = server.Client;
    }

    [Fact]
    public async Task Unary_RoundTripsTheMessage_AndTheDeadlineArrives()
    {
        var response = await _client.UnaryAsync(
            EchoMethod, new EchoRequest { Text = "héllo ✓", Padding = ByteString.CopyFrom(new byte[5000]) }, EchoResponse.Parser, DateTime.UtcNow.AddSeconds(30), TestTimeouts.Token());

        Assert.Equal("héllo ✓", response.Text);
        Assert.Equal(5000u, response.ReceivedPadding);

        // grpc-js reports the milliseconds it had left: our grpc-timeout arrived and was understood.
        Assert.InRange(int.Parse(response.DeadlineSeen, System.Globalization.CultureInfo.InvariantCulture), 20_000, 30_000);
    }

    [Fact]
    public async Task ServerStreaming_DeliversEveryMessageInOrder()
    {
        var values = new List<uint>();
        await foreach (var response in _client.ServerStreamingAsync(CountMethod, new CountRequest { Count = 20, IntervalMs = 1 }, CountResponse.Parser, cancellationToken: TestTimeouts.Token()))
        {
            values.Add(response.Value);
        }

        Assert.Equal(Enumerable.Range(1, 20).Select(v => (uint)v), values);
    }

    [Fact]
    public async Task ErrorStatus_AndItsNonAsciiMessage_ReachOurClient()
    {
        const string message = "nøt føund: 100% ✓ done";

        var ex = await Assert.ThrowsAsync<GrpcException>(() => _client.UnaryAsync(
            EchoMethod, new EchoRequest { Behaviour = new Behaviour { FailCode = (int)GrpcStatusCode.NotFound, FailMessage = message } }, EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.NotFound, ex.StatusCode);
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public async Task ErrorAfterMessages_ReachesOurClientAfterTheMessages()
    {
        var values = new List<uint>();
        var ex = await Assert.ThrowsAsync<GrpcException>(async () =>
        {
            var request = new CountRequest { Count = 3, Behaviour = new Behaviour { FailCode = (int)GrpcStatusCode.Aborted, FailMessage = "stopped" } };
            await foreach (var response in _client.ServerStreamingAsync(CountMethod, request, CountResponse.Parser, cancellationToken: TestTimeouts.Token()))
            {
                values.Add(response.Value);
            }
        });

        Assert.Equal([1u, 2u, 3u], values);
        Assert.Equal(GrpcStatusCode.Aborted, ex.StatusCode);
        Assert.Equal("stopped", ex.Message);
    }

    [Fact]
    public async Task Deadline_ServerTooSlow_IsDeadlineExceeded_AndGrpcJsSeesTheCallEnd()
    {
        var tag = Guid.NewGuid().ToString("N");

        var ex = await Assert.ThrowsAsync<GrpcException>(() => _client.UnaryAsync(
            EchoMethod, new EchoRequest { Behaviour = new Behaviour { DelayMs = 30_000, Tag = tag } }, EchoResponse.Parser, DateTime.UtcNow.AddSeconds(2), TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.DeadlineExceeded, ex.StatusCode);
        await _node.WaitForLineAsync(line => line == $"OBSERVED {tag} cancelled", "the deadline's cancellation");
    }

    [Fact]
    public async Task Cancellation_MidStream_IsObservedByGrpcJs()
    {
        var tag = Guid.NewGuid().ToString("N");
        using var cancellation = new CancellationTokenSource(TestTimeouts.Default);
        var received = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            var request = new CountRequest { Count = 100_000, IntervalMs = 10, Behaviour = new Behaviour { Tag = tag } };
            await foreach (var _ in _client.ServerStreamingAsync(CountMethod, request, CountResponse.Parser, cancellationToken: cancellation.Token))
            {
                if (++received == 3)
                {
                    await cancellation.CancelAsync();
                }
            }
        });

        await _node.WaitForLineAsync(line => line == $"OBSERVED {tag} cancelled", "the client's cancellation");
    }

    [Fact]
    public async Task UnknownMethod_IsUnimplemented()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() => _client.UnaryAsync(
            UnmappedMethod, new EchoRequest(), EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task ResponseOverOurLimit_IsResourceExhausted()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() => _client.UnaryAsync(
            EchoMethod, new EchoRequest { Behaviour = new Behaviour { ResponsePadding = 5 * 1024 * 1024 } }, EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    /// <summary>One grpc-js server for the class (calls are told apart by their tags), started and connected once.</summary>
    public sealed class NodeServer : IAsyncLifetime
    {
        public NodeProcess Process { get; private set; } = null!;

        public GrpcCallInvoker Client { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Process = NodeProcess.Start("server.js");
            var listening = await Process.WaitForLineAsync(line => line.StartsWith("LISTENING ", StringComparison.Ordinal), "LISTENING <port>");
            Client = GrpcCallInvoker.Create(new Uri($"http://127.0.0.1:{listening["LISTENING ".Length..]}"));

            // Connect first, so the short deadlines in the tests are spent on calls, not on opening the connection.
            await Client.UnaryAsync(EchoMethod, new EchoRequest { Text = "warm-up" }, EchoResponse.Parser, cancellationToken: TestTimeouts.Token());
        }

        public async Task DisposeAsync()
        {
            Client?.Dispose();
            if (Process is not null)
            {
                await Process.DisposeAsync();
            }
        }
    }
}
