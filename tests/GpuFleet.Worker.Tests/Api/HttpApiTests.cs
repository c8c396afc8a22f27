using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using GpuFleet.Testing;

namespace GpuFleet.Worker.Tests.Api;

/// <summary>Raw HTTP against a real worker: bad input, reasoning, text completions, health and metrics.</summary>
[Collection(LlamaCollection.Name)]
public sealed class HttpApiTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    private HttpClient Http => new() { BaseAddress = fixture.Worker.BaseAddress, Timeout = TestTimeouts.Default };

    public static TheoryData<string, string?> BadBodies => new()
    {
        { "{not json", null },
        { "[1,2,3]", null },
        { "\"a string\"", null },
        { """{"model":"tiny-qwen35","messages":"hello"}""", "messages" },
        { """{"model":"tiny-qwen35","messages":[]}""", "messages" },
        { """{"model":"tiny-qwen35"}""", "messages" },
        { """{"messages":[{"role":"user","content":"hi"}]}""", "model" },
        { """{"model":"tiny-qwen35","messages":[{"role":"wizard","content":"hi"}]}""", "messages[0].role" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":42}]}""", "messages[0].content" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user"}]}""", "messages[0].content" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}""", "temperature" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"temperature":7}""", "temperature" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}""", "max_tokens" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"n":2}""", "n" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"stop":[1,2]}""", "stop" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", "stream" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}""", "tool_choice" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema"}}""", "response_format.type" },
        { """{"model":"tiny-qwen35","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", "messages[0].content[0].type" },
        { """{"model":"tiny-qwen35","messages":[{"role":"tool","content":"42"}]}""", "messages[0].tool_call_id" },
        { """{"model":"tiny-qwen35","messages":[{"role":"assistant","content":"only an answer, no question"}]}""", "messages" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task Bad_chat_requests_get_400_in_the_OpenAI_error_shape(string body, string? param)
    {
        using var response = await Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await ErrorAsync(response);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.DoesNotContain("   at ", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        if (param is not null)
        {
            Assert.Equal(param, error.GetProperty("param").GetString());
        }
    }

    [Fact]
    public async Task Invalid_utf8_is_a_400_and_an_oversized_body_a_413()
    {
        var invalid = new ByteArrayContent([.. "{\"model\":\"tiny-qwen35\",\"messages\":[{\"role\":\"user\",\"content\":\""u8.ToArray(), 0xC3, 0x28, .. "\"}]}"u8.ToArray()]);
        invalid.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var badUtf8 = await Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), invalid);
        Assert.Equal(HttpStatusCode.BadRequest, badUtf8.StatusCode);
        Assert.Contains("UTF-8", (await ErrorAsync(badUtf8)).GetProperty("message").GetString(), StringComparison.Ordinal);

        var huge = "{\"model\":\"tiny-qwen35\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('a', 17 << 20) + "\"}]}";
        // With Expect: 100-continue the server can refuse before the 17 MB are sent, as clients that upload big bodies do.
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/v1/chat/completions", UriKind.Relative))
        {
            Content = new StringContent(huge, Encoding.UTF8, "application/json"),
        };
        request.Headers.ExpectContinue = true;
        using var tooLarge = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
    }

    [Fact]
    public async Task Models_publish_the_context_one_request_can_hold()
    {
        using var json = JsonDocument.Parse(await Http.GetStringAsync(new Uri("/v1/models", UriKind.Relative)));
        var model = json.RootElement.GetProperty("data")[0];

        // The fixture's --ctx-size: the pool the slots share, all of which one request may use.
        Assert.Equal(4096, model.GetProperty("max_model_len").GetInt32());
        Assert.Equal(4096, model.GetProperty("context_length").GetInt32());
    }

    [Fact]
    public async Task Too_long_prompt_is_refused_with_context_length_exceeded_before_any_stream_byte()
    {
        var body = JsonSerializer.Serialize(new { model = fixture.ModelId, stream = true, messages = new[] { new { role = "user", content = new string('y', 9000) } } });
        using var response = await Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("context_length_exceeded", (await ErrorAsync(response)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Thinking_on_returns_reasoning_content_and_off_returns_content()
    {
        async Task<JsonElement> Ask(bool thinking)
        {
            var body = JsonSerializer.Serialize(new
            {
                model = fixture.ModelId,
                max_tokens = 12,
                temperature = 0,
                messages = new[] { new { role = "user", content = "Think, then answer." } },
                chat_template_kwargs = new { enable_thinking = thinking },
            });
            using var response = await Http.PostAsync(new Uri("/v1/chat/completions", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return json.RootElement.GetProperty("choices")[0].GetProperty("message").Clone();
        }

        var thinking = await Ask(true);
        var direct = await Ask(false);

        // A random model seldom closes its <think> block within 12 tokens: all of it is reasoning.
        Assert.False(string.IsNullOrEmpty(thinking.GetProperty("reasoning_content").GetString()));
        Assert.False(string.IsNullOrEmpty(direct.GetProperty("content").GetString()));
        Assert.False(direct.TryGetProperty("reasoning_content", out _));
    }

    [Fact]
    public async Task Json_object_response_format_constrains_the_reply_to_json()
    {
        var reply = await PostJsonAsync("/v1/chat/completions", new
        {
            model = fixture.ModelId,
            max_tokens = 400,
            seed = 7,
            response_format = new { type = "json_object" },
            messages = new[] { new { role = "user", content = "Reply with a JSON object." } },
        });

        var choice = reply.GetProperty("choices")[0];
        var content = choice.GetProperty("message").GetProperty("content").GetString()!;
        Assert.StartsWith("{", content.TrimStart(), StringComparison.Ordinal);
        if (choice.GetProperty("finish_reason").GetString() == "stop")
        {
            // Finished within the budget: the whole reply is one JSON object.
            using var parsed = JsonDocument.Parse(content);
            Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
        }
    }

    [Fact]
    public async Task Text_completions_accept_text_or_token_prompts_and_stream_with_done()
    {
        var text = await PostJsonAsync("/v1/completions", new { model = fixture.ModelId, prompt = "Once upon a time", max_tokens = 5, temperature = 0 });
        Assert.Equal("text_completion", text.GetProperty("object").GetString());
        Assert.Equal("length", text.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(5, text.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        var tokens = await PostJsonAsync("/v1/completions", new { model = fixture.ModelId, prompt = new[] { 79, 110, 99, 101 }, max_tokens = 3 });
        Assert.Equal(4, tokens.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        var body = JsonSerializer.Serialize(new { model = fixture.ModelId, prompt = "Stream", max_tokens = 6, ignore_eos = true, stream = true, stream_options = new { include_usage = true } });
        using var response = await Http.PostAsync(new Uri("/v1/completions", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
        var all = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        // SSE clients skip comment lines; the one before [DONE] carries the usage report for the gateway. (ignore_eos:
        // the random-weight model may sample its end token early, and the count must be exact.)
        var events = all.Where(e => !e.StartsWith(':')).ToArray();
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.Contains("\"usage\"", events[^2], StringComparison.Ordinal);
        Assert.Matches(@"^: x-gpufleet-usage prompt=\d+;completion=6;cached=0$", all[^2]);
    }

    [Fact]
    public async Task Health_readiness_and_metrics_answer()
    {
        Assert.Equal("ok", await Http.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
        Assert.Equal("ready", await Http.GetStringAsync(new Uri("/readyz", UriKind.Relative)));
        await PostJsonAsync("/v1/completions", new { model = fixture.ModelId, prompt = "metrics", max_tokens = 2 });

        var text = await Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var metrics = PrometheusSamples.Parse(text);

        Assert.Contains("# TYPE gpufleet_worker_queue_depth gauge", text, StringComparison.Ordinal);
        Assert.Equal(0, metrics.Single("gpufleet_worker_queue_depth", ("worker", "api-test"), ("model", "tiny-qwen35")));
        Assert.Equal(4, metrics.Single("gpufleet_worker_slots", ("worker", "api-test"), ("model", "tiny-qwen35"), ("state", "free")));
        Assert.True(metrics.Single("gpufleet_worker_generated_tokens_total") >= 1);
        Assert.True(metrics.Single("gpufleet_worker_requests_total", ("outcome", "completed")) >= 1);
        // The framework's own instruments come with ours.
        Assert.Contains(metrics, m => m.Name == "http_server_request_duration_seconds_count" && m.Has(("http_route", "/v1/completions")));
        Assert.Contains(metrics, m => m.Name.StartsWith("dotnet_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Status_is_served_as_proto_json_with_the_grpc_address()
    {
        var json = await Http.GetStringAsync(new Uri("/status", UriKind.Relative));

        var status = GpuFleet.Contracts.V1.WorkerStatus.Parser.ParseJson(json);
        Assert.Equal("api-test", status.Name);
        Assert.Equal($"http://127.0.0.1:{fixture.Worker.GrpcPort}", status.GrpcAddress);
        Assert.True(status.Ready);
        Assert.Equal(4u, status.Engine.TotalSlots);
    }

    [Fact]
    public async Task Unknown_paths_get_a_404_in_the_error_shape()
    {
        using var response = await Http.GetAsync(new Uri("/v2/everything", UriKind.Relative));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", (await ErrorAsync(response)).GetProperty("code").GetString());
    }

    private async Task<JsonElement> PostJsonAsync(string path, object body)
    {
        using var response = await Http.PostAsync(new Uri(path, UriKind.Relative), new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        using var json = JsonDocument.Parse(text);
        return json.RootElement.Clone();
    }

    private static async Task<JsonElement> ErrorAsync(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("error").Clone();
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        return error;
    }
}
