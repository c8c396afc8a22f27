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
    private WorkerProcess? _worker;

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(_directory, "tiny-qwen3.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen3, DemoModelSize.Tiny));
        _worker = await WorkerProcess.StartAsync(model, "--name", "w0", "--ctx-size", "4096", "--enable-thinking", "false");
    }

    [Fact]
    public async Task Unknown_keys_get_401_and_a_key_over_its_request_limit_gets_429_with_retry_after()
    {
        var file = Path.Combine(_directory, "keys.json");
        var output = new StringWriter();
        Assert.Equal(0, await KeysCommand.RunAsync(["add", "ci", "--rpm", "2", "--keys", file], output, TextWriter.Null));
        var key = output.ToString().Trim();
        await using var gateway = await GatewayProcess.StartAsync("--worker", _worker!.BaseAddress.ToString().TrimEnd('/'), "--keys", file);
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

    private static StringContent Body() => RoutingTests.Json(new { model = "tiny-qwen3", max_tokens = 2, messages = new[] { new { role = "user", content = "hi" } } });

    public async Task DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
