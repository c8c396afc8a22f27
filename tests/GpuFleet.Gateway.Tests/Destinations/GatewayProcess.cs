using System.Globalization;
using System.Text;
using System.Text.Json;
using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Destinations;

/// <summary>
/// A real gateway process on 127.0.0.1 and free ports, waited for until <c>/healthz</c> answers; killed on dispose.
/// Its output is kept for failure messages.
/// </summary>
internal sealed class GatewayProcess : IAsyncDisposable
{
    private readonly DotnetServerProcess _server;

    private GatewayProcess(DotnetServerProcess server, int port, int grpcPort)
    {
        _server = server;
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        GrpcPort = grpcPort;
    }

    public Uri BaseAddress { get; }

    /// <summary>The gateway's gRPC (HTTP/2 without TLS) port.</summary>
    public int GrpcPort { get; }

    public string Output => _server.Output;

    public int ProcessId => _server.ProcessId;

    /// <summary>Starts <c>GpuFleet.Gateway --http-port N --grpc-port N</c> plus <paramref name="args"/>, waited for until <c>/healthz</c> answers.</summary>
    public static async Task<GatewayProcess> StartAsync(params string[] args)
    {
        var port = FreePort.Next();
        var grpcPort = FreePort.Next();
        string[] all = ["--http-port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", grpcPort.ToString(CultureInfo.InvariantCulture), .. args];
        var server = await DotnetServerProcess.StartAsync("gateway", "GpuFleet.Gateway.dll", all, new Uri($"http://127.0.0.1:{port}/healthz"));
        return new GatewayProcess(server, port, grpcPort);
    }

    /// <summary>The gateway's <c>GET /workers</c> view, one entry per worker.</summary>
    public async Task<IReadOnlyList<WorkerView>> WorkersAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri(BaseAddress, "/workers")));
        return [.. json.RootElement.EnumerateArray().Select(w => new WorkerView(
            w.GetProperty("destination").GetString()!,
            w.GetProperty("name").GetString(),
            w.GetProperty("available").GetBoolean(),
            w.GetProperty("draining").GetBoolean()))];
    }

    /// <summary>Polls <c>/workers</c> until <paramref name="condition"/> holds (default test timeout); the last view on failure.</summary>
    public async Task<IReadOnlyList<WorkerView>> WaitForWorkersAsync(HttpClient http, Func<IReadOnlyList<WorkerView>, bool> condition)
    {
        IReadOnlyList<WorkerView> view = [];
        await TestTimeouts.WaitUntilAsync(
            async () => condition(view = await WorkersAsync(http)),
            () => $"the gateway's view never matched: {string.Join("; ", view)}\n{Output}");
        return view;
    }

    /// <summary>A small chat completion through the gateway; the worker that served it (<c>x-gpufleet-worker</c>).</summary>
    public async Task<string> ChatAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var response = await http.PostAsync(new Uri(BaseAddress, "/v1/chat/completions"), new StringContent(
            """{"model":"tiny-qwen35","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}\n{Output}");
        return response.Headers.GetValues("x-gpufleet-worker").Single();
    }

    /// <summary>Sends SIGTERM, as Kubernetes does to stop a pod.</summary>
    public void Terminate() => _server.Terminate();

    /// <summary>The exit code, once the process has exited (default test timeout).</summary>
    public Task<int> WaitForExitAsync() => _server.WaitForExitAsync();

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}

internal sealed record WorkerView(string Destination, string? Name, bool Available, bool Draining);
