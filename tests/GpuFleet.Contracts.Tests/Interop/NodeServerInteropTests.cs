using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace GpuFleet.Contracts.Tests.Interop;

/// <summary>Grpc.Net.Client (the gateway's client) against a real grpc-js server (tests/interop/node/server.js), over h2c.</summary>
public sealed class NodeServerInteropTests : IClassFixture<NodeServerInteropTests.NodeServer>
{
    private readonly NodeProcess _node;
    private readonly InteropTest.InteropTestClient _client;

    public NodeServerInteropTests(NodeServer server)
    {
        _node = server.Process;
        _client = server.Client;
    }

    [Fact]
    public async Task Unary_RoundTripsTheMessage_AndTheDeadlineArrives()
    {
        var response = await _client.EchoAsync(
            new EchoRequest { Text = "héllo ✓", Padding = ByteString.CopyFrom(new byte[5000]) }, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: TestTimeouts.Token());

        Assert.Equal("héllo ✓", response.Text);
        Assert.Equal(5000u, response.ReceivedPadding);

        // grpc-js reports the milliseconds it had left: our grpc-timeout arrived and was understood.
        Assert.InRange(int.Parse(response.DeadlineSeen, System.Globalization.CultureInfo.InvariantCulture), 20_000, 30_000);
    }

    [Fact]
    public async Task ServerStreaming_DeliversEveryMessageInOrder()
    {
        var values = new List<uint>();
        using var call = _client.Count(new CountRequest { Count = 20, IntervalMs = 1 }, cancellationToken: TestTimeouts.Token());
        await foreach (var response in call.ResponseStream.ReadAllAsync())
        {
            values.Add(response.Value);
        }

        Assert.Equal(Enumerable.Range(1, 20).Select(v => (uint)v), values);
    }

    [Fact]
    public async Task ErrorStatus_AndItsNonAsciiMessage_ReachOurClient()
    {
        const string message = "nøt føund: 100% ✓ done";

        var ex = await Assert.ThrowsAsync<RpcException>(() => _client.EchoAsync(
            new EchoRequest { Behaviour = new Behaviour { FailCode = (int)StatusCode.NotFound, FailMessage = message } }, cancellationToken: TestTimeouts.Token()).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal(message, ex.Status.Detail);
    }

    [Fact]
    public async Task ErrorAfterMessages_ReachesOurClientAfterTheMessages()
    {
        var values = new List<uint>();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            var request = new CountRequest { Count = 3, Behaviour = new Behaviour { FailCode = (int)StatusCode.Aborted, FailMessage = "stopped" } };
            using var call = _client.Count(request, cancellationToken: TestTimeouts.Token());
            await foreach (var response in call.ResponseStream.ReadAllAsync())
            {
                values.Add(response.Value);
            }
        });

        Assert.Equal([1u, 2u, 3u], values);
        Assert.Equal(StatusCode.Aborted, ex.StatusCode);
        Assert.Equal("stopped", ex.Status.Detail);
    }

    [Fact]
    public async Task Deadline_ServerTooSlow_IsDeadlineExceeded_AndGrpcJsSeesTheCallEnd()
    {
        var tag = Guid.NewGuid().ToString("N");

        var ex = await Assert.ThrowsAsync<RpcException>(() => _client.EchoAsync(
            new EchoRequest { Behaviour = new Behaviour { DelayMs = 30_000, Tag = tag } }, deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: TestTimeouts.Token()).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        await _node.WaitForLineAsync(line => line == $"OBSERVED {tag} cancelled", "the deadline's cancellation");
    }

    [Fact]
    public async Task Cancellation_MidStream_IsObservedByGrpcJs()
    {
        var tag = Guid.NewGuid().ToString("N");
        using var cancellation = new CancellationTokenSource(TestTimeouts.Default);
        var received = 0;

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            var request = new CountRequest { Count = 100_000, IntervalMs = 10, Behaviour = new Behaviour { Tag = tag } };
            using var call = _client.Count(request, cancellationToken: cancellation.Token);
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
                if (++received == 3)
                {
                    await cancellation.CancelAsync();
                }
            }
        });

        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        await _node.WaitForLineAsync(line => line == $"OBSERVED {tag} cancelled", "the client's cancellation");
    }

    [Fact]
    public async Task UnknownMethod_IsUnimplemented()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _client.UnmappedAsync(new EchoRequest(), cancellationToken: TestTimeouts.Token()).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task ResponseOverOurLimit_IsResourceExhausted()
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => _client.EchoAsync(
            new EchoRequest { Behaviour = new Behaviour { ResponsePadding = 5 * 1024 * 1024 } }, cancellationToken: TestTimeouts.Token()).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
    }

    /// <summary>One grpc-js server for the class (calls are told apart by their tags), started and connected once.</summary>
    public sealed class NodeServer : IAsyncLifetime
    {
        public NodeProcess Process { get; private set; } = null!;

        private GrpcChannel? _channel;

        public InteropTest.InteropTestClient Client { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Process = NodeProcess.Start("server.js");
            var listening = await Process.WaitForLineAsync(line => line.StartsWith("LISTENING ", StringComparison.Ordinal), "LISTENING <port>");
            // The gateway's settings: 4 MiB in (Grpc.Net.Client's default, and ours before), h2c.
            _channel = GrpcChannel.ForAddress($"http://127.0.0.1:{listening["LISTENING ".Length..]}", new GrpcChannelOptions { MaxReceiveMessageSize = 4 * 1024 * 1024 });
            Client = new InteropTest.InteropTestClient(_channel);

            // Connect first, so the short deadlines in the tests are spent on calls, not on opening the connection.
            await Client.EchoAsync(new EchoRequest { Text = "warm-up" }, cancellationToken: TestTimeouts.Token());
        }

        public async Task DisposeAsync()
        {
            _channel?.Dispose();
            if (Process is not null)
            {
                await Process.DisposeAsync();
            }
        }
    }
}
