using System.Globalization;

namespace GpuFleet.Testing;

/// <summary>
/// A real worker process (<c>GpuFleet.Worker --model ...</c>) on 127.0.0.1 with free ports, started and
/// waited for until <c>/readyz</c> answers; killed on dispose. Output is kept for failure messages.
/// </summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly DotnetServerProcess _server;

    private WorkerProcess(DotnetServerProcess server, int httpPort, int grpcPort)
    {
        _server = server;
        HttpPort = httpPort;
        GrpcPort = grpcPort;
    }

    public int HttpPort { get; }

    public int GrpcPort { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{HttpPort}");

    public Uri OpenAiEndpoint => new($"http://127.0.0.1:{HttpPort}/v1");

    public int ProcessId => _server.ProcessId;

    public bool HasExited => _server.HasExited;

    public int ExitCode => _server.ExitCode;

    public string Output => _server.Output;

    public static Task<WorkerProcess> StartAsync(string modelPath, params string[] extraArgs) =>
        StartOnPortsAsync(modelPath, FreePort.Next(), FreePort.Next(), extraArgs);

    /// <summary>Starts a worker on the given ports: a worker restarted where the gateway knows it (chaos tests).</summary>
    public static async Task<WorkerProcess> StartOnPortsAsync(string modelPath, int httpPort, int grpcPort, params string[] extraArgs)
    {
        string[] args =
        [
            "--model", modelPath, "--host", "127.0.0.1",
            "--http-port", httpPort.ToString(CultureInfo.InvariantCulture),
            "--grpc-port", grpcPort.ToString(CultureInfo.InvariantCulture), "--threads", "2",
            .. extraArgs,
        ];
        var server = await DotnetServerProcess.StartAsync("worker", "GpuFleet.Worker.dll", args, new Uri($"http://127.0.0.1:{httpPort}/readyz"));
        return new WorkerProcess(server, httpPort, grpcPort);
    }

    /// <summary>SIGKILL: the worker dies at once, mid-request (failover tests).</summary>
    public void Kill() => _server.Kill();

    /// <summary>Sends SIGTERM, as Kubernetes does to stop a pod.</summary>
    public void Terminate() => _server.Terminate();

    public Task<int> WaitForExitAsync() => _server.WaitForExitAsync();

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
