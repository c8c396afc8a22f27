using System.Diagnostics;
using System.Text;

namespace GpuFleet.Testing;

/// <summary>
/// A real worker process (<c>GpuFleet.Worker --model ...</c>) on 127.0.0.1 with free ports, started and
/// waited for until <c>/readyz</c> answers; killed on dispose. Output is kept for failure messages.
/// </summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private WorkerProcess(Process process, int httpPort, int grpcPort)
    {
        _process = process;
        HttpPort = httpPort;
        GrpcPort = grpcPort;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int HttpPort { get; }

    public int GrpcPort { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{HttpPort}");

    public Uri OpenAiEndpoint => new($"http://127.0.0.1:{HttpPort}/v1");

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

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

    public static async Task<WorkerProcess> StartAsync(string modelPath, params string[] extraArgs)
    {
        var httpPort = FreePort.Next();
        var grpcPort = FreePort.Next();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "GpuFleet.Worker.dll"), "--model", modelPath, "--host", "127.0.0.1",
                     "--http-port", httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--grpc-port", grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--threads", "2" }.Concat(extraArgs))
        {
            start.ArgumentList.Add(arg);
        }

        var worker = new WorkerProcess(Process.Start(start)!, httpPort, grpcPort);
        using var http = new HttpClient { BaseAddress = worker.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                if (worker._process.HasExited)
                {
                    throw new InvalidOperationException($"The worker exited with {worker._process.ExitCode}:\n{worker.Output}");
                }

                try
                {
                    return (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).IsSuccessStatusCode;
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    return false; // not listening or not answering yet
                }
            });
            return worker;
        }
        catch (TimeoutException)
        {
            await worker.DisposeAsync();
            throw new TimeoutException($"The worker did not become ready:\n{worker.Output}");
        }
    }

    /// <summary>Sends SIGTERM, as Kubernetes does to stop a pod.</summary>
    /// <summary>SIGKILL: the worker dies at once, mid-request (failover tests).</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    public async Task<int> WaitForExitAsync()
    {
        await _process.WaitForExitAsync().WaitAsync(TestTimeouts.Default);
        return _process.ExitCode;
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
