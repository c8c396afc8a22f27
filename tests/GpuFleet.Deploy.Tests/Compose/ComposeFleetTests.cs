using System.ClientModel;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuFleet.Testing;
using OpenAI;
using OpenAI.Chat;

namespace GpuFleet.Deploy.Tests.Compose;

/// <summary>
/// The compose contract a user relies on, run for real: <c>deploy/build-images.sh</c> builds the images (local base
/// images from Debian packages, since no registry is reachable here), <c>docker-compose --profile cpu up -d</c> starts
/// Redis, Prometheus, the gateway and two CPU workers on a generated demo model, the official OpenAI SDK talks to the
/// gateway, Prometheus scrapes every process, and a worker stopped mid-traffic costs no request.
/// </summary>
public sealed class ComposeFleetTests(DockerEngine docker) : IClassFixture<DockerEngine>
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(25);
    private static readonly TimeSpan FleetTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task The_cpu_profile_serves_openai_clients_is_scraped_by_prometheus_and_survives_a_stopped_worker()
    {
        var build = await ExternalCommand.RunAsync(Path.Combine(RepositoryPaths.Of("deploy"), "build-images.sh"), ["gateway", "worker-cpu", "redis", "prometheus"],
            environment: docker.Environment, timeout: BuildTimeout);
        Assert.True(build.ExitCode == 0, build.Describe("deploy/build-images.sh"));

        var project = $"gpufleet-test-{Environment.ProcessId}";
        var httpPort = FreePort.Next();
        var prometheusPort = FreePort.Next();
        var environment = new Dictionary<string, string>(docker.Environment)
        {
            ["GPUFLEET_HTTP_PORT"] = httpPort.ToString(CultureInfo.InvariantCulture),
            ["GPUFLEET_GRPC_PORT"] = FreePort.Next().ToString(CultureInfo.InvariantCulture),
            ["GPUFLEET_PROMETHEUS_PORT"] = prometheusPort.ToString(CultureInfo.InvariantCulture),
        };
        Task<ExternalCommand.Result> Compose(params string[] args) =>
            ExternalCommand.RunAsync("docker-compose", ["-f", Path.Combine(RepositoryPaths.Of("deploy", "compose"), "docker-compose.yml"), "-p", project, "--profile", "cpu", .. args],
                environment: environment, timeout: FleetTimeout);

        try
        {
            var up = await Compose("up", "-d");
            Assert.True(up.ExitCode == 0, up.Describe("docker-compose up"));

            var gateway = new Uri($"http://127.0.0.1:{httpPort}");
            using var http = new HttpClient { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(60) };
            await WaitUntilAsync(async () => await AvailableWorkersAsync(http) == 2, "two workers available behind the gateway", Compose);

            // The official SDK, streaming.
            var chat = new OpenAIClient(new ApiKeyCredential("none"), new OpenAIClientOptions { Endpoint = new Uri(gateway, "/v1") }).GetChatClient("model");
            var updates = 0;
            ChatFinishReason? finish = null;
            await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Say hello.")], new ChatCompletionOptions { MaxOutputTokenCount = 8 }))
            {
                updates++;
                finish ??= update.FinishReason;
            }

            Assert.True(updates > 1, "the stream had no chunks");
            Assert.NotNull(finish);

            // A second turn of a conversation goes to the worker that holds the first, and reuses its cache.
            var system = string.Concat(Enumerable.Repeat("You are a careful assistant for the GpuFleet compose test. ", 30));
            var first = await ChatAsync(http, [Message("system", system), Message("user", "First question?")]);
            var second = await ChatAsync(http, [Message("system", system), Message("user", "First question?"), first.Reply, Message("user", "And a second one?")]);
            Assert.Equal(first.Worker, second.Worker);
            Assert.NotEqual("load", second.Route);
            Assert.True(second.CachedTokens > 0, $"the second turn reused no cached tokens (route {second.Route})");

            // Prometheus scrapes the gateway and both workers (found through the network alias).
            using var prometheus = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{prometheusPort}"), Timeout = TimeSpan.FromSeconds(10) };
            await WaitUntilAsync(async () =>
            {
                using var targets = JsonDocument.Parse(await prometheus.GetStringAsync(new Uri("/api/v1/targets", UriKind.Relative)));
                var active = targets.RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray().ToList();
                return active.Count == 3 && active.All(t => t.GetProperty("health").GetString() == "up");
            }, "Prometheus scraping the gateway and both workers", Compose);
            using (var rules = JsonDocument.Parse(await prometheus.GetStringAsync(new Uri("/api/v1/rules", UriKind.Relative))))
            {
                Assert.NotEmpty(rules.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray());
            }

            // Stop one worker (SIGTERM: it drains) while requests keep coming: every one succeeds.
            var stop = Compose("stop", "worker-cpu-1");
            var failures = new List<string>();
            var sent = 0;
            while (!stop.IsCompleted || sent < 20)
            {
                sent++;
                using var response = await http.PostAsJsonAsync(new Uri("/v1/chat/completions", UriKind.Relative),
                    new { model = "model", messages = new[] { new { role = "user", content = $"Request {sent}" } }, max_tokens = 4 });
                if (!response.IsSuccessStatusCode)
                {
                    failures.Add($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                }
            }

            var stopped = await stop;
            Assert.True(stopped.ExitCode == 0, stopped.Describe("docker-compose stop"));
            Assert.True(failures.Count == 0, $"{failures.Count} of {sent} requests failed while a worker stopped:\n{string.Join('\n', failures)}");
            Assert.Equal(1, await AvailableWorkersAsync(http));
        }
        finally
        {
            await Compose("down", "-v", "--remove-orphans");
        }
    }

    private static JsonObject Message(string role, string content) => new() { ["role"] = role, ["content"] = content };

    private sealed record Turn(string Worker, string Route, int CachedTokens, JsonObject Reply);

    private static async Task<Turn> ChatAsync(HttpClient http, JsonObject[] messages)
    {
        var body = new JsonObject
        {
            ["model"] = "model",
            ["messages"] = new JsonArray([.. messages.Select(m => m.DeepClone())]),
            ["max_tokens"] = 8,
            ["user"] = "compose-test",
        };
        using var response = await http.PostAsJsonAsync(new Uri("/v1/chat/completions", UriKind.Relative), body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        var json = JsonNode.Parse(text)!;
        var reply = json["choices"]![0]!["message"]!;
        return new Turn(
            response.Headers.GetValues("x-gpufleet-worker").Single(),
            response.Headers.GetValues("x-gpufleet-route").Single(),
            json["usage"]!["prompt_tokens_details"]!["cached_tokens"]!.GetValue<int>(),
            Message("assistant", reply["content"]?.GetValue<string>() ?? ""));
    }

    private static async Task<int> AvailableWorkersAsync(HttpClient http)
    {
        try
        {
            using var workers = JsonDocument.Parse(await http.GetStringAsync(new Uri("/workers", UriKind.Relative)));
            return workers.RootElement.EnumerateArray().Count(w => w.GetProperty("available").GetBoolean());
        }
        catch (HttpRequestException)
        {
            return 0; // the gateway is still starting
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, Func<string[], Task<ExternalCommand.Result>> compose)
    {
        var deadline = DateTime.UtcNow + FleetTimeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                var logs = await compose(["logs", "--no-color", "--tail", "40"]);
                Assert.Fail($"No {what} within {FleetTimeout}:\n{logs.Stdout}");
            }

            await Task.Delay(500);
        }
    }
}
