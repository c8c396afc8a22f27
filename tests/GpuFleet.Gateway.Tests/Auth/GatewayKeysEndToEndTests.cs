using System.Net;
using System.Net.Http.Headers;
using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Gateway.Tests.Routing;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Auth;

/// <summary>API keys and per-key limits on a real gateway process in front of a real worker.</summary>
public sealed class GatewayKeysEndToEndTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-keys-e2e-").FullName;

    public Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Unknown_keys_get_401_and_a_key_over_its_request_limit_gets_429_with_retry_after()
    {
        var model = Path.Combine(_directory, "tiny-qwen3.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen3, DemoModelSize.Tiny));
        await using var worker = await WorkerProcess.StartAsync(model, "--name", "w0", "--ctx-size", "4096", "--enable-thinking", "false");
        var file = Path.Combine(_directory, "keys.json");
        var output = new StringWriter();
        Assert.Equal(0, await KeysCommand.RunAsync(["add", "ci", "--rpm", "2", "--keys", file], output, TextWriter.Null));
        var key = output.ToString().Trim();
        await using var gateway = await GatewayProcess.StartAsync("--worker", worker.BaseAddress.ToString().TrimEnd('/'), "--keys", file);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        // /workers needs a key like the API; /readyz does not.
        await TestTimeouts.WaitUntilAsync(async () => (await http.GetAsync(new Uri(gateway.BaseAddress, "/readyz"))).IsSuccessStatusCode);

        using (var anonymous = await http.PostAsync(new Uri(gateway.BaseAddress, "/v1/chat/completions"), Body()))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "gf-not-a-key");
        using (var wrong = await http.PostAsync(new Uri(gateway.BaseAddress, "/v1/chat/completions"), Body()))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var statuses = new List<HttpStatusCode>();
        TimeSpan? retryAfter = null;
        for (var i = 0; i < 3; i++)
        {
            using var response = await http.PostAsync(new Uri(gateway.BaseAddress, "/v1/chat/completions"), Body());
            statuses.Add(response.StatusCode);
            retryAfter = response.Headers.RetryAfter?.Delta ?? retryAfter;
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        Assert.InRange(retryAfter?.TotalSeconds ?? 0, 1, 60);
    }

    [Fact]
    public async Task A_request_refused_at_capacity_after_its_key_admitted_it_gives_its_token_estimate_back()
    {
        var file = Path.Combine(_directory, "keys-tpm.json");
        var output = new StringWriter();
        Assert.Equal(0, await KeysCommand.RunAsync(["add", "agent", "--tpm", "6000", "--keys", file], output, TextWriter.Null));
        var key = output.ToString().Trim();
        // One slot, no queue, answers of 10 s: a second request finds the fleet full.
        var model = Path.Combine(_directory, "sim-qwen3.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen3, DemoModelSize.Tiny));
        await using var slow = await WorkerProcess.StartAsync(model, "--name", "slow", "--simulate", "--simulate-tokens", "100", "--simulate-token-ms", "100",
            "--slots", "1", "--queue", "0", "--ctx-size", "4096", "--enable-thinking", "false");
        await using var gateway = await GatewayProcess.StartAsync("--worker", slow.BaseAddress.ToString().TrimEnd('/'), "--keys", file);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        await gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == 1);
        var chat = new Uri(gateway.BaseAddress, "/v1/chat/completions");
        StringContent Large(string text) => RoutingTests.Json(new { model = "sim-qwen3", max_tokens = 9000, messages = new[] { new { role = "user", content = text } } });

        using var stop = new CancellationTokenSource();
        var busy = http.PostAsync(chat, RoutingTests.Json(new { model = "sim-qwen3", max_tokens = 200, messages = new[] { new { role = "user", content = "busy" } } }), stop.Token);
        await TestTimeouts.WaitUntilAsync(async () => (await http.GetStringAsync(new Uri(gateway.BaseAddress, "/workers"))).Contains("\"running_slots\":1", StringComparison.Ordinal));

        // The key admits an estimate of a whole context (4,096 tokens), then the fleet refuses it: full.
        using (var refused = await http.PostAsync(chat, Large("refused at capacity")))
        {
            Assert.Contains("fleet_overloaded", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Had that estimate stayed spent, 4,096 more would pass the key's 6,000 tokens per minute: refused by the key.
        using var next = await http.PostAsync(chat, Large("next"));
        Assert.DoesNotContain("\"code\":\"rate_limit_exceeded\"", await next.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // The busy answer has done its part; the test does not wait out the rest of its 10 s.
        await stop.CancelAsync();
        try
        {
            (await busy).Dispose();
        }
        catch (OperationCanceledException)
        {
            // Cancelled as intended.
        }
    }

    private static StringContent Body() => RoutingTests.Json(new { model = "tiny-qwen3", max_tokens = 2, messages = new[] { new { role = "user", content = "hi" } } });

    public Task DisposeAsync()
    {
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }
}
