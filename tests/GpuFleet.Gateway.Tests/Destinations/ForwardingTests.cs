using System.ClientModel;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;
using OpenAI;
using OpenAI.Chat;

namespace GpuFleet.Gateway.Tests.Destinations;

/// <summary>
/// The gateway as a real process in front of two real workers, called with the official OpenAI SDK. The fleet is shared
/// by the class's tests, except by the one that drains a worker: it starts its own.
/// </summary>
public sealed class ForwardingTests(ForwardingTests.Fleet fleet) : IClassFixture<ForwardingTests.Fleet>
{
    private readonly GatewayProcess _gateway = fleet.Gateway;

    [Fact]
    public async Task Chat_through_the_gateway_is_served_by_a_worker_and_says_which()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await _gateway.WaitForWorkersAsync(http, view => view.Count(w => w.Available) == 2);
        var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_gateway.BaseAddress, "/v1") });
        var chat = client.GetChatClient("tiny-qwen35");

        var result = await chat.CompleteChatAsync([new UserChatMessage("Hello through the gateway")], new ChatCompletionOptions { MaxOutputTokenCount = 5, Temperature = 0 });
        var text = new System.Text.StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Stream through the gateway")], new ChatCompletionOptions { MaxOutputTokenCount = 5, Temperature = 0 }))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal(5, result.Value.Usage.OutputTokenCount);
        var worker = result.GetRawResponse().Headers.TryGetValue("x-gpufleet-worker", out var name) ? name : null;
        Assert.Contains(worker, new[] { "w0", "w1" });
        Assert.NotEqual(0, text.Length);
    }

    [Fact]
    public async Task A_draining_worker_gets_no_new_requests_through_the_gateway()
    {
        // Its own fleet: draining ends a worker.
        var own = new Fleet();
        await own.InitializeAsync();
        try
        {
            await DrainAsync(own);
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    private static async Task DrainAsync(Fleet own)
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        var gateway = own.Gateway.BaseAddress;

        // Keep worker 0 busy with a long stream (straight to it), then SIGTERM it: it drains.
        var draining = own.Workers[0];
        var body = System.Text.Json.JsonSerializer.Serialize(new { model = "tiny-qwen35", stream = true, max_tokens = 1500, ignore_eos = true, messages = new[] { new { role = "user", content = "long" } } });
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(draining.BaseAddress, "/v1/chat/completions")) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        using var stream = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        draining.Terminate();
        await own.Gateway.WaitForWorkersAsync(http, view => view.Any(w => w.Draining));

        var servedBy = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            using var response = await http.PostAsync(new Uri(gateway, "/v1/chat/completions"), new StringContent(
                """{"model":"tiny-qwen35","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            servedBy.Add(response.Headers.GetValues("x-gpufleet-worker").Single());
        }

        Assert.All(servedBy, worker => Assert.Equal("w1", worker));
    }

    [Fact]
    public async Task A_body_with_or_without_content_length_reaches_the_worker_whole()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await _gateway.WaitForWorkersAsync(http, view => view.Count(w => w.Available) == 2);
        var body = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new
        {
            model = "tiny-qwen35",
            max_tokens = 2,
            messages = new[] { new { role = "user", content = string.Concat(Enumerable.Repeat("A prompt long enough to span a few prefix blocks. ", 25)) } },
        }));

        async Task<long> PromptTokensAsync(HttpContent content)
        {
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var response = await http.PostAsync(new Uri(_gateway.BaseAddress, "/v1/chat/completions"), content);
            var json = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, json);
            using var document = System.Text.Json.JsonDocument.Parse(json);
            return document.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt64();
        }

        // With Content-Length, and chunked (a stream of unknown length): the gateway reads either whole and sends it on
        // in one piece; the worker must see the same prompt both times.
        var withLength = await PromptTokensAsync(new ByteArrayContent(body));
        var chunked = new StreamContent(new UnseekableStream(body));
        var withoutLength = await PromptTokensAsync(chunked);
        Assert.True(withLength > 100, $"prompt tokens {withLength}");
        Assert.Equal(withLength, withoutLength);
    }

    /// <summary>A read-only stream that hides its length, so that HttpClient sends it chunked.</summary>
    private sealed class UnseekableStream(byte[] bytes) : MemoryStream(bytes, writable: false)
    {
        public override bool CanSeek => false;
    }

    /// <summary>Two workers on the tiny qwen35 model.</summary>
    public sealed class Fleet() : GatewayFleet("tiny-qwen35", DemoArchitecture.Qwen35, 2, "--ctx-size", "2048", "--enable-thinking", "false");
}
