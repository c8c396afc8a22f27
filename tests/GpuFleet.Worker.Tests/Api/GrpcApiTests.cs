using GpuFleet.Contracts.Grpc;
using GpuFleet.Contracts.Health;
using GpuFleet.Contracts.V1;
using GpuFleet.Testing;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>The worker's gRPC services on its HTTP/2 port, called with the project's gRPC client over h2c.</summary>
[Collection(LlamaCollection.Name)]
public sealed class GrpcApiTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    private GrpcCallInvoker Client => GrpcCallInvoker.Create(new Uri($"http://127.0.0.1:{fixture.Worker.GrpcPort}"));

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

        var unknownModel = await Assert.ThrowsAsync<GrpcException>(() => Collect(client, new GenerateRequest { Model = "nope", Prompt = "x" }));
        var noInput = await Assert.ThrowsAsync<GrpcException>(() => Collect(client, new GenerateRequest { Model = fixture.ModelId }));
        var tooLong = await Assert.ThrowsAsync<GrpcException>(() => Collect(client, new GenerateRequest { Prompt = new string('z', 9000) }));
        var badSampling = await Assert.ThrowsAsync<GrpcException>(() => Collect(client, new GenerateRequest { Prompt = "x", Sampling = new SamplingParams { TopP = 5 } }));

        Assert.Equal(GrpcStatusCode.NotFound, unknownModel.StatusCode);
        Assert.Equal(GrpcStatusCode.InvalidArgument, noInput.StatusCode);
        Assert.Equal(GrpcStatusCode.InvalidArgument, tooLong.StatusCode);
        Assert.Contains("4096 tokens", tooLong.Message, StringComparison.Ordinal);
        Assert.Equal(GrpcStatusCode.InvalidArgument, badSampling.StatusCode);
        Assert.Contains("top_p", badSampling.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deadline_ends_the_call_with_deadline_exceeded_and_frees_the_slot()
    {
        using var client = Client;
        var request = new GenerateRequest { Prompt = "Keep going", MaxTokens = 4000, IgnoreEos = true };

        var error = await Assert.ThrowsAsync<GrpcException>(() => Collect(client, request, DateTime.UtcNow.AddMilliseconds(300)));

        Assert.Equal(GrpcStatusCode.DeadlineExceeded, error.StatusCode);
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
        Assert.Equal(4096u, status.Engine.ContextPerSlot);
        Assert.Equal($"http://127.0.0.1:{fixture.Worker.GrpcPort}", status.GrpcAddress);
        Assert.True(status.Engine.KvBytesTotal > 0);
        Assert.NotNull(status.ObservedAt);
    }

    [Fact]
    public async Task Standard_health_check_says_serving()
    {
        using var client = Client;

        var overall = await client.UnaryAsync(GrpcHealthService.CheckMethod, new HealthCheckRequest(), HealthCheckResponse.Parser);
        var inference = await client.UnaryAsync(GrpcHealthService.CheckMethod, new HealthCheckRequest { Service = "gpufleet.v1.Inference" }, HealthCheckResponse.Parser);

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, overall.Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, inference.Status);
    }

    private static async Task<List<GenerateResponse>> Collect(GrpcCallInvoker client, GenerateRequest request, DateTime? deadline = null)
    {
        var list = new List<GenerateResponse>();
        await foreach (var response in client.ServerStreamingAsync("/gpufleet.v1.Inference/Generate", request, GenerateResponse.Parser, deadline ?? DateTime.UtcNow.Add(TestTimeouts.Default)))
        {
            list.Add(response);
        }

        return list;
    }

    private static async Task<WorkerStatus> FirstStatusWhere(GrpcCallInvoker client, Func<WorkerStatus, bool> condition)
    {
        await foreach (var status in client.ServerStreamingAsync("/gpufleet.v1.WorkerStatusService/Watch", new WatchStatusRequest(), WorkerStatus.Parser, DateTime.UtcNow.Add(TestTimeouts.Default)))
        {
            if (condition(status))
            {
                return status;
            }
        }

        throw new InvalidOperationException("The status stream ended.");
    }
}
