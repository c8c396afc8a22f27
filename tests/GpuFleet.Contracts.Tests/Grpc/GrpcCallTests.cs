using Google.Protobuf;
using GpuFleet.Contracts.Grpc;
using GpuFleet.Contracts.Health;
using GpuFleet.Contracts.Tests.Interop;
using GpuFleet.Contracts.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Contracts.Tests.Grpc;

/// <summary>Our client against our server, in process on Kestrel h2c.</summary>
public sealed class GrpcCallTests : IAsyncLifetime
{
    private GrpcTestServer _server = null!;
    private GrpcCallInvoker _client = null!;

    public async Task InitializeAsync()
    {
        _server = await GrpcTestServer.StartAsync();
        _client = _server.CreateInvoker();

        // Connect first, so the short deadlines below are spent on the call, not on opening the connection.
        await EchoAsync(new EchoRequest { Text = "warm-up" });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Unary_RoundTripsTheMessage()
    {
        var response = await EchoAsync(new EchoRequest { Text = "héllo ✓", Padding = ByteString.CopyFrom(new byte[3000]) });

        Assert.Equal("héllo ✓", response.Text);
        Assert.Equal(3000u, response.ReceivedPadding);
        Assert.Equal(string.Empty, response.DeadlineSeen);
    }

    [Fact]
    public async Task ServerStreaming_DeliversEveryMessageInOrder()
    {
        var values = await CountAsync(new CountRequest { Count = 50, IntervalMs = 1 });

        Assert.Equal(Enumerable.Range(1, 50).Select(v => (uint)v), values);
    }

    [Fact]
    public async Task ServerStreaming_NoMessages_EndsCleanly()
    {
        Assert.Empty(await CountAsync(new CountRequest { Count = 0 }));
    }

    [Fact]
    public async Task Unary_HandlerStatus_ReachesTheClientWithItsMessage()
    {
        // Non-ASCII, '%' and a control character all travel percent-encoded in grpc-message.
        const string message = "nøt føund: 100% ✓\tdone";

        var ex = await Assert.ThrowsAsync<GrpcException>(
            () => EchoAsync(new EchoRequest { Behaviour = new Behaviour { FailCode = (int)GrpcStatusCode.NotFound, FailMessage = message } }));

        Assert.Equal(GrpcStatusCode.NotFound, ex.StatusCode);
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public async Task ServerStreaming_ErrorAfterMessages_ArrivesInTheTrailers()
    {
        var received = new List<uint>();
        var ex = await Assert.ThrowsAsync<GrpcException>(async () =>
        {
            var request = new CountRequest { Count = 3, Behaviour = new Behaviour { FailCode = (int)GrpcStatusCode.Aborted, FailMessage = "stopped" } };
            await foreach (var response in _client.ServerStreamingAsync(InteropTestService.CountMethod, request, CountResponse.Parser, cancellationToken: TestTimeouts.Token()))
            {
                received.Add(response.Value);
            }
        });

        Assert.Equal([1u, 2u, 3u], received);
        Assert.Equal(GrpcStatusCode.Aborted, ex.StatusCode);
        Assert.Equal("stopped", ex.Message);
    }

    [Fact]
    public async Task Deadline_IsSentAsGrpcTimeout()
    {
        var response = await EchoAsync(new EchoRequest { Text = "x" }, DateTime.UtcNow.AddSeconds(30));

        Assert.Matches("^[0-9]{1,8}[HMSmun]$", response.DeadlineSeen);
    }

    // Deadlines in these tests are 2 s: on a loaded 2-core CI machine a few hundred milliseconds could run out
    // before the call reached the server or before its first message came back.
    [Fact]
    public async Task Deadline_HandlerTooSlow_EndsWithDeadlineExceeded_AndTheHandlerSeesIt()
    {
        var tag = Guid.NewGuid().ToString("N");

        var ex = await Assert.ThrowsAsync<GrpcException>(() => EchoAsync(
            new EchoRequest { Behaviour = new Behaviour { DelayMs = 30_000, Tag = tag } }, DateTime.UtcNow.AddSeconds(2)));

        Assert.Equal(GrpcStatusCode.DeadlineExceeded, ex.StatusCode);

        // Client and server timers race; either way the handler's token fired long before its 30 s delay.
        Assert.Contains(await _server.Service.OutcomeAsync(tag), new[] { "deadline", "cancelled" });
    }

    [Fact]
    public async Task Deadline_ServerEnforcesItWithoutTheClientTimer()
    {
        // A raw request with a grpc-timeout but no client-side timer: only the server's deadline can end it.
        var tag = Guid.NewGuid().ToString("N");
        using var http = RawHttp.CreateClient(_server.Address);
        using var response = await RawHttp.SendAsync(
            http,
            InteropTestService.EchoMethod,
            new EchoRequest { Behaviour = new Behaviour { DelayMs = 30_000, Tag = tag } },
            headers: [("grpc-timeout", "200m")]);

        Assert.Equal("4", RawHttp.Status(response));
        Assert.Equal("deadline", await _server.Service.OutcomeAsync(tag));
        Assert.Single(_server.Logs.Entries, e => e.EventId.Name == "GrpcDeadlineExceeded");
    }

    [Fact]
    public async Task Deadline_AlreadyPassed_FailsWithoutCallingTheServer()
    {
        var tag = Guid.NewGuid().ToString("N");

        var ex = await Assert.ThrowsAsync<GrpcException>(() => EchoAsync(
            new EchoRequest { Behaviour = new Behaviour { Tag = tag } }, DateTime.UtcNow.AddSeconds(-1)));

        Assert.Equal(GrpcStatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.False(_server.Service.HasStarted(tag));
    }

    [Fact]
    public async Task ServerStreaming_DeadlineMidStream_EndsWithDeadlineExceeded()
    {
        var received = 0;
        var ex = await Assert.ThrowsAsync<GrpcException>(async () =>
        {
            var request = new CountRequest { Count = 100_000, IntervalMs = 10 };
            await foreach (var _ in _client.ServerStreamingAsync(InteropTestService.CountMethod, request, CountResponse.Parser, DateTime.UtcNow.AddSeconds(2), TestTimeouts.Token()))
            {
                received++;
            }
        });

        Assert.Equal(GrpcStatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.InRange(received, 1, 99_999);
    }

    [Fact]
    public async Task ClientCancellation_MidStream_IsObservedByTheServerHandler()
    {
        var tag = Guid.NewGuid().ToString("N");
        using var cancellation = new CancellationTokenSource(TestTimeouts.Default);
        var received = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            var request = new CountRequest { Count = 100_000, IntervalMs = 10, Behaviour = new Behaviour { Tag = tag } };
            await foreach (var _ in _client.ServerStreamingAsync(InteropTestService.CountMethod, request, CountResponse.Parser, cancellationToken: cancellation.Token))
            {
                if (++received == 3)
                {
                    await cancellation.CancelAsync();
                }
            }
        });

        Assert.Equal("cancelled", await _server.Service.OutcomeAsync(tag));
        Assert.Equal(LogLevel.Information, (await _server.WaitForLogAsync("GrpcCallCancelled")).Level);
    }

    [Fact]
    public async Task ClientCancellation_OfAUnaryCall_IsObservedByTheServerHandler()
    {
        var tag = Guid.NewGuid().ToString("N");
        using var cancellation = new CancellationTokenSource(TestTimeouts.Default);

        var call = _client.UnaryAsync(
            InteropTestService.EchoMethod, new EchoRequest { Behaviour = new Behaviour { DelayMs = 30_000, Tag = tag } }, EchoResponse.Parser, cancellationToken: cancellation.Token);
        await _server.Service.StartedAsync(tag);
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Equal("cancelled", await _server.Service.OutcomeAsync(tag));
    }

    [Fact]
    public async Task LeavingAStreamEarly_ResetsIt_AndTheServerHandlerSeesCancellation()
    {
        var tag = Guid.NewGuid().ToString("N");
        var request = new CountRequest { Count = 100_000, IntervalMs = 10, Behaviour = new Behaviour { Tag = tag } };

        await foreach (var response in _client.ServerStreamingAsync(InteropTestService.CountMethod, request, CountResponse.Parser, cancellationToken: TestTimeouts.Token()))
        {
            if (response.Value == 2)
            {
                break;
            }
        }

        Assert.Equal("cancelled", await _server.Service.OutcomeAsync(tag));
    }

    [Fact]
    public async Task RequestOverTheServerLimit_IsResourceExhausted()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() => EchoAsync(
            new EchoRequest { Padding = ByteString.CopyFrom(new byte[GrpcServerOptions.DefaultMaxReceiveMessageSize + 1]) }));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task ResponseOverTheClientLimit_IsResourceExhausted()
    {
        using var client = _server.CreateInvoker(new GrpcClientOptions { MaxReceiveMessageSize = 64 * 1024 });

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(
            InteropTestService.EchoMethod, new EchoRequest { Behaviour = new Behaviour { ResponsePadding = 100_000 } }, EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task RequestOverTheClientSendLimit_IsResourceExhausted_BeforeSending()
    {
        using var client = _server.CreateInvoker(new GrpcClientOptions { MaxSendMessageSize = 1024 });

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(
            InteropTestService.EchoMethod, new EchoRequest { Padding = ByteString.CopyFrom(new byte[2048]) }, EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task LargeMessages_UnderTheLimits_RoundTrip()
    {
        var response = await EchoAsync(new EchoRequest
        {
            Padding = ByteString.CopyFrom(new byte[3 * 1024 * 1024]),
            Behaviour = new Behaviour { ResponsePadding = 3 * 1024 * 1024 },
        });

        Assert.Equal(3u * 1024 * 1024, response.ReceivedPadding);
        Assert.Equal(3 * 1024 * 1024, response.Padding.Length);
    }

    [Fact]
    public async Task UnknownMethod_IsUnimplemented()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() => EchoAsync(new EchoRequest(), method: InteropTestService.UnmappedMethod));
        Assert.Equal(GrpcStatusCode.Unimplemented, ex.StatusCode);

        ex = await Assert.ThrowsAsync<GrpcException>(() => EchoAsync(new EchoRequest(), method: "/no.such.Service/Method"));
        Assert.Equal(GrpcStatusCode.Unimplemented, ex.StatusCode);
    }

    [Fact]
    public async Task HandlerBug_IsInternal_WithAGenericMessage_AndLogged()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() => EchoAsync(new EchoRequest { Behaviour = new Behaviour { ThrowUnexpected = true } }));

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
        Assert.DoesNotContain(InteropTestService.SecretExceptionText, ex.Message, StringComparison.Ordinal);
        var logged = Assert.Single(_server.Logs.Entries, e => e.EventId.Name == "GrpcHandlerFailed");
        Assert.Equal(LogLevel.Error, logged.Level);
        Assert.IsType<InvalidOperationException>(logged.Exception);
    }

    [Fact]
    public async Task HealthCheck_AnswersServing_AndNotFoundForUnknownServices()
    {
        var serving = await _client.UnaryAsync(GrpcHealthService.CheckMethod, new HealthCheckRequest(), HealthCheckResponse.Parser, cancellationToken: TestTimeouts.Token());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, serving.Status);

        _server.Health.SetStatus("gpufleet.v1.Inference", HealthCheckResponse.Types.ServingStatus.NotServing);
        var notServing = await _client.UnaryAsync(
            GrpcHealthService.CheckMethod, new HealthCheckRequest { Service = "gpufleet.v1.Inference" }, HealthCheckResponse.Parser, cancellationToken: TestTimeouts.Token());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, notServing.Status);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => _client.UnaryAsync(
            GrpcHealthService.CheckMethod, new HealthCheckRequest { Service = "no.such.Service" }, HealthCheckResponse.Parser, cancellationToken: TestTimeouts.Token()));
        Assert.Equal(GrpcStatusCode.NotFound, ex.StatusCode);
    }

    [Fact]
    public async Task HealthWatch_StreamsTheCurrentStatusThenChanges()
    {
        const string service = "watched.Service";
        using var cancellation = new CancellationTokenSource(TestTimeouts.Default);
        var seen = new List<HealthCheckResponse.Types.ServingStatus>();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var response in _client.ServerStreamingAsync(
                GrpcHealthService.WatchMethod, new HealthCheckRequest { Service = service }, HealthCheckResponse.Parser, cancellationToken: cancellation.Token))
            {
                seen.Add(response.Status);
                switch (seen.Count)
                {
                    case 1:
                        _server.Health.SetStatus(service, HealthCheckResponse.Types.ServingStatus.Serving);
                        break;
                    case 2:
                        _server.Health.SetStatus(service, HealthCheckResponse.Types.ServingStatus.NotServing);
                        break;
                    default:
                        await cancellation.CancelAsync();
                        break;
                }
            }
        });

        Assert.Equal(
            [HealthCheckResponse.Types.ServingStatus.ServiceUnknown, HealthCheckResponse.Types.ServingStatus.Serving, HealthCheckResponse.Types.ServingStatus.NotServing],
            seen);
    }

    [Fact]
    public async Task Generate_CarriesOneofsOptionalsAndNestedMessages()
    {
        var request = new GenerateRequest
        {
            Prompt = "Once upon",
            Sampling = new SamplingParams { Temperature = 0, Seed = 7 },
            MaxTokens = 5,
            Model = "demo",
        };

        var responses = new List<GenerateResponse>();
        await foreach (var response in _client.ServerStreamingAsync(FakeInference.GenerateMethod, request, GenerateResponse.Parser, cancellationToken: TestTimeouts.Token()))
        {
            responses.Add(response);
        }

        // An explicit zero temperature is "set", which is why the fields are optional.
        Assert.Equal("prompt:Once upon|temperature=0|top_p=unset|seed=7|max_tokens=5|stop=0|model=demo", responses[0].Delta.Text);
        Assert.Equal(GenerateResponse.KindOneofCase.Final, responses[^1].KindCase);
        Assert.Equal(3u, responses[^1].Final.Usage.CompletionTokens);
    }

    [Fact]
    public async Task StreamWriter_RefusesOverlappingWrites()
    {
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await GrpcTestServer.StartAsync(map: app =>
            app.MapGrpcServerStreaming<CountRequest, CountResponse>("/test.Overlap/Write", CountRequest.Parser, async (request, writer, context) =>
            {
                // A big message cannot be flushed at once, so the first write is still in flight when the second starts.
                var big = new CountResponse { Padding = ByteString.CopyFrom(new byte[2 * 1024 * 1024]) };
                var first = writer.WriteAsync(big, context.CancellationToken);
                var second = Record.ExceptionAsync(() => writer.WriteAsync(big, context.CancellationToken));
                outcome.TrySetResult(await second);
                await first;
            }));
        using var client = server.CreateInvoker();

        await foreach (var _ in client.ServerStreamingAsync("/test.Overlap/Write", new CountRequest(), CountResponse.Parser, cancellationToken: TestTimeouts.Token()))
        {
        }

        Assert.IsType<InvalidOperationException>(await outcome.Task.WithTimeout());
    }

    [Fact]
    public async Task ServerSendLimit_IsResourceExhausted()
    {
        await using var server = await GrpcTestServer.StartAsync(options => options.MaxSendMessageSize = 1024);
        using var client = server.CreateInvoker();

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(
            InteropTestService.EchoMethod, new EchoRequest { Behaviour = new Behaviour { ResponsePadding = 2048 } }, EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task ServerReceiveLimit_IsConfigurable()
    {
        await using var server = await GrpcTestServer.StartAsync(options => options.MaxReceiveMessageSize = 1024);
        using var client = server.CreateInvoker();

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(
            InteropTestService.EchoMethod, new EchoRequest { Padding = ByteString.CopyFrom(new byte[2048]) }, EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task NobodyListening_IsUnavailable()
    {
        // Take a free port and close it again: connecting there is refused.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var client = GrpcCallInvoker.Create(new Uri($"http://127.0.0.1:{port}"));

        var ex = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(
            InteropTestService.EchoMethod, new EchoRequest(), EchoResponse.Parser, cancellationToken: TestTimeouts.Token()));

        Assert.Equal(GrpcStatusCode.Unavailable, ex.StatusCode);
    }

    private Task<EchoResponse> EchoAsync(EchoRequest request, DateTime? deadline = null, string method = InteropTestService.EchoMethod) =>
        _client.UnaryAsync(method, request, EchoResponse.Parser, deadline, TestTimeouts.Token());

    private async Task<List<uint>> CountAsync(CountRequest request)
    {
        var values = new List<uint>();
        await foreach (var response in _client.ServerStreamingAsync(InteropTestService.CountMethod, request, CountResponse.Parser, cancellationToken: TestTimeouts.Token()))
        {
            values.Add(response.Value);
        }

        return values;
    }
}
