using System.Diagnostics;
using System.Text;

namespace GpuFleet.Testing;

/// <summary>
/// What every server a test runs as a real process shares: <c>dotnet &lt;dll&gt; args</c> from the test's output folder,
/// its output kept for failure messages, a wait until an HTTP probe answers, SIGTERM, and a kill on dispose.
/// </summary>
public sealed class DotnetServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DotnetServerProcess(Process process, string name)
    {
        _process = process;
        Name = name;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>What the process is, for messages ("worker", "gateway").</summary>
    public string Name { get; }

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

    /// <summary>
    /// Starts <c>dotnet &lt;dll&gt; args</c>, then waits (default test timeout) until the process has said that it
    /// listens on <paramref name="probe"/>'s address and the probe answers 2xx. The first condition matters when
    /// another process took the port first: the probe alone would then be answered by that one.
    /// </summary>
    public static async Task<DotnetServerProcess> StartAsync(string name, string dll, IEnumerable<string> args, Uri probe)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(probe);
        var listening = $"listening on {probe.Scheme}://{probe.Authority}";
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        foreach (var arg in args.Prepend(Path.Combine(AppContext.BaseDirectory, dll)))
        {
            start.ArgumentList.Add(arg);
        }

        var server = new DotnetServerProcess(Process.Start(start)!, name);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                if (server.HasExited)
                {
                    // HasExited can turn true before the output readers have seen the last lines (the reason it
                    // failed to start); WaitForExitAsync returns once both redirected streams are read to the end.
                    await server._process.WaitForExitAsync();
                    throw new InvalidOperationException($"The {name} exited with {server.ExitCode}:\n{server.Output}");
                }

                if (!server.Output.Contains(listening, StringComparison.Ordinal))
                {
                    return false;
                }

                try
                {
                    return (await http.GetAsync(probe)).IsSuccessStatusCode;
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    return false; // not listening or not answering yet
                }
            });
            return server;
        }
        catch (TimeoutException)
        {
            await server.DisposeAsync();
            throw new TimeoutException($"The {name} did not answer {probe}:\n{server.Output}");
        }
    }

    /// <summary>SIGKILL: the process dies at once, mid-request (failover tests).</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>Sends SIGTERM, as Kubernetes does to stop a pod.</summary>
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
