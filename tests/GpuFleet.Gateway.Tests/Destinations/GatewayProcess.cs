using System.Diagnostics;
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
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private GatewayProcess(Process process, int port, int grpcPort)
    {
        _process = process;
        GrpcPort = grpcPort;
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri BaseAddress { get; }

    /// <summary>The gateway's gRPC (HTTP/2 without TLS) port.</summary>
    public int GrpcPort { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <c>GpuFleet.Gateway --http-port N --grpc-port N</c> plus <paramref name="args"/>.</summary>
    public static async Task<GatewayProcess> StartAsync(params string[] args)
    {
        var port = FreePort.Next();
        var grpcPort = FreePort.Next();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        foreach (var arg in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "GpuFleet.Gateway.dll"),
                     "--http-port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", grpcPort.ToString(CultureInfo.InvariantCulture),
                 }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        var gateway = new GatewayProcess(Process.Start(start)!, port, grpcPort);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                if (gateway._process.HasExited)
                {
                    throw new InvalidOperationException($"The gateway exited with {gateway._process.ExitCode}:\n{gateway.Output}");
                }

                try
                {
                    return (await http.GetAsync(new Uri(gateway.BaseAddress, "/healthz"))).IsSuccessStatusCode;
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    return false; // not listening yet
                }
            });
            return gateway;
        }
        catch (TimeoutException)
        {
            await gateway.DisposeAsync();
            throw new TimeoutException($"The gateway did not start:\n{gateway.Output}");
        }
    }

    /// <summary>The gateway's <c>GET /workers</c> view, one entry per worker.</summary>
    public async Task<IReadOnlyList<WorkerView>> WorkersAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri(BaseAddress, "/workers")));
        return [.. json.RootElement.EnumerateArray().Select(w => new WorkerView(
            w.GetProperty("destination").GetString()!,
            w.GetProperty("name").GetString(),
            w.GetProperty("available").GetBoolean()))];
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

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}

/// <summary>One entry of the gateway's <c>GET /workers</c>.</summary>
internal sealed record WorkerView(string Destination, string? Name, bool Available);
