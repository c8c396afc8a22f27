using System.Net;
using System.Net.Http.Headers;
using System.Text;
using GpuFleet.Gateway.Auth;
using GpuFleet.Gateway.Hosting;
using GpuFleet.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Tests.Auth;

/// <summary>The middleware in a real Kestrel on 127.0.0.1, in front of a trivial endpoint, with a real keys file.</summary>
public sealed class ApiKeyAuthenticationMiddlewareTests : IAsyncLifetime
{
    private const string ExpectedBody = """{"error":{"message":"Invalid or missing API key.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}""";

    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-auth-").FullName;
    private readonly List<WebApplication> _apps = [];
    private readonly System.Collections.Concurrent.ConcurrentQueue<LogEntry> _logs = new();
    private string _aliceKey = "";

    private string KeysFile => Path.Combine(_directory, "keys.json");

    public async Task InitializeAsync() => _aliceKey = await AddKeyAsync("alice", "--rpm", "60");

    public async Task DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Every_failure_gets_the_same_401_and_a_valid_key_passes_with_its_identity()
    {
        var bobKey = await AddKeyAsync("bob");
        await RunKeysAsync("remove", "bob", "--keys", KeysFile);
        var address = await StartAsync(KeysFile, http2: false);
        using var http = new HttpClient { BaseAddress = address, Timeout = TestTimeouts.Default };

        string?[] failures =
        [
            null, "Basic " + Convert.ToBase64String(Encoding.ASCII.GetBytes("alice:" + _aliceKey)), "Bearer", "Bearer ", "Bearer    ",
            "Bearer gf-unknown", "Bearer " + ApiKeySecrets.Generate(), "Bearer " + ApiKeySecrets.Hash(_aliceKey), "Bearer " + bobKey,
            "Bearer " + _aliceKey + "x", "Bearer " + new string('k', 10_000), "Token " + _aliceKey, _aliceKey,
        ];
        foreach (var authorization in failures)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
            if (authorization is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }

            await AssertUnauthorizedAsync(await http.SendAsync(request), authorization);
        }

        using (var twice = new HttpRequestMessage(HttpMethod.Get, "/v1/models"))
        {
            twice.Headers.TryAddWithoutValidation("Authorization", ["Bearer " + _aliceKey, "Bearer " + _aliceKey]);
            await AssertUnauthorizedAsync(await http.SendAsync(twice), "two Authorization headers");
        }

        foreach (var scheme in new[] { "Bearer", "bearer" })
        {
            using var ok = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
            ok.Headers.TryAddWithoutValidation("Authorization", $"{scheme} {_aliceKey}");
            var response = await http.SendAsync(ok);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            // The endpoint saw the identity and no Authorization header (nothing to forward to a worker).
            Assert.Equal("alice rpm=60 tpm= authorization=", await response.Content.ReadAsStringAsync());
        }

        foreach (var open in new[] { "/healthz", "/readyz", "/metrics", "/fleet", "/fleet.json" })
        {
            var response = await http.GetAsync(new Uri(open, UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("anonymous", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Grpc_calls_get_unauthenticated_as_a_trailers_only_response()
    {
        var address = await StartAsync(KeysFile, http2: true);
        using var http = new HttpClient { BaseAddress = address, Timeout = TestTimeouts.Default };
        foreach (var authorization in new[] { null, "Bearer nope" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/gpufleet.v1.Worker/Status")
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = new ByteArrayContent(new byte[5]),
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
            if (authorization is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }

            var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(new Version(2, 0), response.Version);
            Assert.Equal("16", Assert.Single(response.Headers.GetValues("grpc-status")));
            Assert.Equal("Invalid or missing API key.", Assert.Single(response.Headers.GetValues("grpc-message")));
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        }

        // A real gRPC client reads the refusal as the call's status.
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(address);
        var client = new GpuFleet.Contracts.V1.WorkerStatusService.WorkerStatusServiceClient(channel);
        using var call = client.Watch(new GpuFleet.Contracts.V1.WatchStatusRequest(), deadline: DateTime.UtcNow.Add(TestTimeouts.Default));
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Equal("Invalid or missing API key.", refused.Status.Detail);

        using var allowed = new HttpRequestMessage(HttpMethod.Post, "/gpufleet.v1.Worker/Status")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(new byte[5]),
        };
        allowed.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        allowed.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _aliceKey);
        Assert.Equal("alice rpm=60 tpm= authorization=", await (await http.SendAsync(allowed)).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Keys_added_or_removed_while_running_take_effect_within_seconds_and_a_bad_file_keeps_the_last_good_set()
    {
        // Virtual time: each reload interval passes at once, and a change must be in force after one of them.
        var time = new ManualTimeProvider();
        var address = await StartAsync(KeysFile, http2: false, time);
        using var http = new HttpClient { BaseAddress = address, Timeout = TestTimeouts.Default };
        var bobKey = await AddKeyAsync("bob", "--tpm", "500");
        await AssertUnauthorizedAsync(await GetAsync(http, bobKey), "bob's key before the next reload");
        time.Advance(ApiKeyStore.ReloadInterval);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, bobKey)).StatusCode);
        Assert.Equal("bob rpm= tpm=500 authorization=", await (await GetAsync(http, bobKey)).Content.ReadAsStringAsync());

        await RunKeysAsync("remove", "alice", "--keys", KeysFile);
        time.Advance(ApiKeyStore.ReloadInterval);
        await AssertUnauthorizedAsync(await GetAsync(http, _aliceKey), "removed key");

        // A broken file (an editor's half-written save) changes nothing: bob still works, and it is logged once.
        await File.WriteAllTextAsync(KeysFile, "{\"keys\":[{\"name\":\"bob\"");
        time.Advance(ApiKeyStore.ReloadInterval);
        time.Advance(ApiKeyStore.ReloadInterval);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, bobKey)).StatusCode);
        time.Advance(ApiKeyStore.ReloadInterval);
        time.Advance(ApiKeyStore.ReloadInterval);
        Assert.Equal(1, _logs.Count(e => e.Name == "KeysFileInvalid"));
        Assert.DoesNotContain(_logs, e => e.Message.Contains(bobKey, StringComparison.Ordinal) || e.Message.Contains(ApiKeySecrets.Hash(bobKey), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_a_keys_file_the_gateway_is_open_and_says_so()
    {
        var address = await StartAsync(keysFile: null, http2: false);
        using var http = new HttpClient { BaseAddress = address, Timeout = TestTimeouts.Default };
        var response = await http.GetAsync(new Uri("/v1/models", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("anonymous", await response.Content.ReadAsStringAsync());
        var warning = Assert.Single(_logs, e => e.Name == "GatewayOpen");
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("OPEN to anyone", warning.Message, StringComparison.Ordinal);
    }

    private static async Task AssertUnauthorizedAsync(HttpResponseMessage response, string? what)
    {
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what}: {response.StatusCode}");
        Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).ToString());
        Assert.Equal("application/json", response.Content.Headers.ContentType?.ToString());
        Assert.Equal(Encoding.UTF8.GetBytes(ExpectedBody), await response.Content.ReadAsByteArrayAsync());
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient http, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return await http.SendAsync(request);
    }

    private async Task<string> AddKeyAsync(string name, params string[] limits)
    {
        using var stdout = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, await KeysCommand.RunAsync(["add", name, .. limits, "--keys", KeysFile], stdout, TextWriter.Null));
        return stdout.ToString().Trim();
    }

    private static async Task RunKeysAsync(params string[] args) => Assert.Equal(0, await KeysCommand.RunAsync(args, TextWriter.Null, TextWriter.Null));

    private async Task<Uri> StartAsync(string? keysFile, bool http2, TimeProvider? time = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders().AddProvider(new CapturingLoggerProvider(_logs)).SetMinimumLevel(LogLevel.Debug);
        builder.Services.Configure<GatewayOptions>(options => options.KeysFile = keysFile);
        builder.Services.AddSingleton(time ?? TimeProvider.System);
        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<ApiKeyStore>());
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            listen.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1));
        var app = builder.Build();
        _apps.Add(app);
        app.UseMiddleware<ApiKeyAuthenticationMiddleware>();
        app.Run(context =>
        {
            var key = context.Features.Get<ApiKeyFeature>()?.Key;
            return context.Response.WriteAsync(key is null
                ? "anonymous"
                : $"{key.Name} rpm={key.RequestsPerMinute} tpm={key.TokensPerMinute} authorization={context.Request.Headers.Authorization}");
        });
        await app.StartAsync();
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new Uri(bound);
    }

    private sealed record LogEntry(string Name, LogLevel Level, string Message);

    private sealed class CapturingLoggerProvider(System.Collections.Concurrent.ConcurrentQueue<LogEntry> entries) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(entries);

        public void Dispose()
        {
        }

        private sealed class Logger(System.Collections.Concurrent.ConcurrentQueue<LogEntry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue(new LogEntry(eventId.Name ?? "", logLevel, formatter(state, exception)));
        }
    }
}
