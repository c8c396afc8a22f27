using Google.Protobuf;
using GpuFleet.Contracts.V1;
using GpuFleet.Testing;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>The worker's gRPC services on its HTTP/2 port, called with Grpc.Net.Client's generated clients over h2c.</summary>
[Collection(LlamaCollection.Name)]
public sealed class GrpcApiTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    private GrpcChannel Client => Channel(fixture.Worker);

    [Fact]
    public async Task Generate_streams_deltas_with_token_ids_then_a_final_message_with_usage()
    {
        using var client = Client;
        var request = new GenerateRequest
        {
            Model = fixture.ModelId,
            MaxTokens = 10,
            Sampling = new SamplingParams { Temperature = 0 },
            Chat = new ChatInput { EnableThinking = false, Messages = { new ChatMessage { Role = "user", Content = "Hello over gRPC" } } },
        };

        var responses = await Collect(client, request);

        var final = responses[^1].Final;
        Assert.NotNull(final);
        var deltas = responses.Where(r => r.KindCase == GenerateResponse.KindOneofCase.Delta).Select(r => r.Delta).ToList();
        Assert.True(final.FinishReason is "length" or "stop", final.FinishReason);
        Assert.Equal(final.Usage.CompletionTokens, (uint)deltas.Sum(d => d.TokenIds.Count) + (final.FinishReason == "stop" ? 1u : 0u));
        Assert.True(final.Usage.PromptTokens > 5);
        Assert.True(final.Usage.TimeToFirstTokenMs > 0);
        Assert.Contains(deltas, d => d.Text.Length > 0);
    }

    [Fact]
    public async Task Generate_with_a_raw_prompt_matches_the_text_completion_endpoint()
    {
        using var client = Client;
        using var http = new HttpClient { BaseAddress = fixture.Worker.BaseAddress };
        var body = System.Text.Json.JsonSerializer.Serialize(new { model = fixture.ModelId, prompt = "The fleet", max_tokens = 6, temperature = 0, ignore_eos = false });
        using var response = await http.PostAsync(new Uri("/v1/completions", UriKind.Relative), new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        using var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var expected = json.RootElement.GetProperty("choices")[0].GetProperty("text").GetString();

        var responses = await Collect(client, new GenerateRequest { Prompt = "The fleet", MaxTokens = 6, Sampling = new SamplingParams { Temperature = 0 } });

        Assert.Equal(expected, string.Concat(responses.Where(r => r.Delta is not null).Select(r => r.Delta.Text)));
    }

    [Fact]
    public async Task Refusals_carry_grpc_status_codes()
    {
        using var client = Client;

        var unknownModel = await Assert.ThrowsAsync<RpcException>(() => Collect(client, new GenerateRequest { Model = "nope", Prompt = "x" }));
        var noInput = await Assert.ThrowsAsync<RpcException>(() => Collect(client, new GenerateRequest { Model = fixture.ModelId }));
        var tooLong = await Assert.ThrowsAsync<RpcException>(() => Collect(client, new GenerateRequest { Prompt = new string('z', 9000) }));
        var badSampling = await Assert.ThrowsAsync<RpcException>(() => Collect(client, new GenerateRequest { Prompt = "x", Sampling = new SamplingParams { TopP = 5 } }));

        Assert.Equal(StatusCode.NotFound, unknownModel.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, noInput.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, tooLong.StatusCode);
        Assert.Contains("4096 tokens", tooLong.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, badSampling.StatusCode);
        Assert.Contains("top_p", badSampling.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deadline_ends_the_call_with_deadline_exceeded_and_frees_the_slot()
    {
        using var client = Client;
        var request = new GenerateRequest { Prompt = "Keep going", MaxTokens = 4000, IgnoreEos = true };

        var deadline = DateTime.UtcNow.AddMilliseconds(300);
        var error = await Assert.ThrowsAsync<RpcException>(() => Collect(client, request, deadline));

        // DEADLINE_EXCEEDED is best effort over HTTP/2 (grpc/grpc#2685): both ends watch the deadline, and when the
        // worker's reset of the stream reaches a busy client before its own timer fires, the client reports the reset.
        // Either way the call must end at the deadline, not before it, and not run on.
        Assert.True(error.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Cancelled or StatusCode.Unavailable, $"{error.StatusCode}: {error.Status.Detail}");
        Assert.True(DateTime.UtcNow >= deadline, "the call ended before its deadline");
        var status = await FirstStatusWhere(client, s => s.Engine.RunningSlots == 0);
        Assert.Equal(4u, status.Engine.FreeSlots);
    }

    [Fact]
    public async Task Status_watch_reports_the_worker_and_its_engine()
    {
        using var client = Client;

        var status = await FirstStatusWhere(client, _ => true);

        Assert.Equal("api-test", status.Name);
        Assert.Equal(fixture.ModelId, status.Model);
        Assert.True(status.Ready);
        Assert.False(status.Draining);
        Assert.Equal(4u, status.Engine.TotalSlots);
        Assert.Equal(4096u, status.Engine.ContextPerSlot); // the fixture's --ctx-size: one pool shared by the 4 slots
        Assert.Equal($"http://127.0.0.1:{fixture.Worker.GrpcPort}", status.GrpcAddress);
        Assert.True(status.Engine.KvBytesTotal > 0);
        Assert.NotNull(status.ObservedAt);
    }

    [Fact]
    public async Task Standard_health_check_says_serving()
    {
        using var channel = Client;
        var health = new Health.HealthClient(channel);

        var overall = await health.CheckAsync(new HealthCheckRequest(), deadline: Deadline());
        var inference = await health.CheckAsync(new HealthCheckRequest { Service = "gpufleet.v1.Inference" }, deadline: Deadline());
        var unknown = await Assert.ThrowsAsync<RpcException>(() => health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }, deadline: Deadline()).ResponseAsync);

        Assert.Equal(ServingStatus.Serving, overall.Status);
        Assert.Equal(ServingStatus.Serving, inference.Status);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Health_turns_not_serving_as_soon_as_the_worker_drains()
    {
        // Its own worker: draining ends it. A long grace and a running stream keep it draining while we look.
        await using var worker = await WorkerProcess.StartAsync(fixture.ModelPath, "--slots", "1", "--ctx-size", "16384", "--drain-timeout", "600");
        using var channel = Channel(worker);
        var health = new Health.HealthClient(channel);
        using var watchAll = health.Watch(new HealthCheckRequest(), deadline: Deadline());
        using var watchInference = health.Watch(new HealthCheckRequest { Service = "gpufleet.v1.Inference" }, deadline: Deadline());
        Assert.True(await watchAll.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.Serving, watchAll.ResponseStream.Current.Status);
        Assert.True(await watchInference.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.Serving, watchInference.ResponseStream.Current.Status);
        using var streamCancel = new CancellationTokenSource();
        using var stream = new Inference.InferenceClient(channel).Generate(
            new GenerateRequest { Prompt = "Keep going", MaxTokens = 15000, IgnoreEos = true }, deadline: Deadline(), cancellationToken: streamCancel.Token);
        Assert.True(await stream.ResponseStream.MoveNext());

        var signalled = TimeProvider.System.GetTimestamp();
        worker.Terminate();

        // Pushed to watchers at once, not at the health publisher's next poll.
        Assert.True(await watchAll.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.NotServing, watchAll.ResponseStream.Current.Status);
        Assert.True(await watchInference.ResponseStream.MoveNext());
        Assert.Equal(ServingStatus.NotServing, watchInference.ResponseStream.Current.Status);
        Assert.True(TimeProvider.System.GetElapsedTime(signalled) < TimeSpan.FromSeconds(5));
        var overall = await health.CheckAsync(new HealthCheckRequest(), deadline: Deadline());
        var inference = await health.CheckAsync(new HealthCheckRequest { Service = "gpufleet.v1.Inference" }, deadline: Deadline());
        Assert.Equal(ServingStatus.NotServing, overall.Status);
        Assert.Equal(ServingStatus.NotServing, inference.Status);
        var refused = await Assert.ThrowsAsync<RpcException>(() => Collect(channel, new GenerateRequest { Prompt = "late" }));
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);

        // The client leaving ends the last stream, so the drain completes and the worker exits cleanly. The health
        // watchers leave first: the worker keeps Watch calls open through its stop (so that they see the drain), and
        // open ones would hold its exit until their deadline.
        watchAll.Dispose();
        watchInference.Dispose();
        await streamCancel.CancelAsync();
        Assert.Equal(0, await worker.WaitForExitAsync());
    }

    [Fact]
    public async Task An_overloaded_worker_answers_resource_exhausted_with_a_retry_pushback()
    {
        await using var worker = await WorkerProcess.StartAsync(fixture.ModelPath, "--slots", "1", "--queue", "0", "--ctx-size", "16384");
        using var channel = Channel(worker);
        using var running = new CancellationTokenSource();
        using var stream = new Inference.InferenceClient(channel).Generate(
            new GenerateRequest { Prompt = "Keep going", MaxTokens = 15000, IgnoreEos = true }, deadline: Deadline(), cancellationToken: running.Token);
        Assert.True(await stream.ResponseStream.MoveNext());

        var refused = await Assert.ThrowsAsync<RpcException>(() => Collect(channel, new GenerateRequest { Prompt = "one more" }));

        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        var pushback = refused.Trailers.GetValue("grpc-retry-pushback-ms");
        Assert.NotNull(pushback);
        Assert.True(int.Parse(pushback, System.Globalization.CultureInfo.InvariantCulture) >= 1000, pushback);
        await running.CancelAsync();
    }

    [Fact]
    public async Task Server_reflection_lists_the_worker_services()
    {
        using var channel = Client;

        var services = await ListServices(channel);

        Assert.Contains("gpufleet.v1.Inference", services);
        Assert.Contains("gpufleet.v1.WorkerStatusService", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }

    [Fact]
    public async Task An_unknown_method_is_unimplemented()
    {
        using var channel = Client;
        var method = new Method<WatchStatusRequest, WorkerStatus>(
            MethodType.ServerStreaming, "gpufleet.v1.WorkerStatusService", "NoSuchMethod", Marshallers.Create(m => m.ToByteArray(), WatchStatusRequest.Parser.ParseFrom), Marshallers.Create(m => m.ToByteArray(), WorkerStatus.Parser.ParseFrom));
        var service = new Method<WatchStatusRequest, WorkerStatus>(
            MethodType.ServerStreaming, "no.such.Service", "Watch", method.RequestMarshaller, method.ResponseMarshaller);

        foreach (var unknown in new[] { method, service })
        {
            using var call = channel.CreateCallInvoker().AsyncServerStreamingCall(unknown, null, new CallOptions(deadline: Deadline()), new WatchStatusRequest());
            var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
            Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
        }
    }

    /// <summary>The services a server reflection client (grpcurl's "list") sees.</summary>
    internal static async Task<List<string>> ListServices(GrpcChannel channel)
    {
        var reflection = new ServerReflection.ServerReflectionClient(channel);
        using var call = reflection.ServerReflectionInfo(deadline: Deadline());
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = string.Empty });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        return [.. call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name)];
    }

    private static GrpcChannel Channel(WorkerProcess worker) => GrpcChannel.ForAddress($"http://127.0.0.1:{worker.GrpcPort}");

    private static DateTime Deadline() => DateTime.UtcNow.Add(TestTimeouts.Default);

    private static async Task<List<GenerateResponse>> Collect(GrpcChannel channel, GenerateRequest request, DateTime? deadline = null)
    {
        var list = new List<GenerateResponse>();
        using var call = new Inference.InferenceClient(channel).Generate(request, deadline: deadline ?? Deadline());
        await foreach (var response in call.ResponseStream.ReadAllAsync())
        {
            list.Add(response);
        }

        return list;
    }

    private static async Task<WorkerStatus> FirstStatusWhere(GrpcChannel channel, Func<WorkerStatus, bool> condition)
    {
        using var call = new WorkerStatusService.WorkerStatusServiceClient(channel).Watch(new WatchStatusRequest(), deadline: Deadline());
        await foreach (var status in call.ResponseStream.ReadAllAsync())
        {
            if (condition(status))
            {
                return status;
            }
        }

        throw new InvalidOperationException("The status stream ended.");
    }
}
