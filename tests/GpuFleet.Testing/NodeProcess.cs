using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace GpuFleet.Testing;

/// <summary>
/// A Node.js script from tests/interop/node run as a real process: its stdout lines are collected and can be
/// awaited (bounded), and it is killed when disposed, whatever state the test left it in.
/// </summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Lock _lock = new();
    private readonly List<string> _stdout = [];
    private readonly StringBuilder _stderr = new();
    private TaskCompletionSource _lineArrived = NewSignal();

    private NodeProcess(Process process)
    {
        _process = process;
    }

    /// <summary>tests/interop/node, where the scripts and their node_modules live.</summary>
    public static string ScriptDirectory { get; } = RepositoryPaths.Of("tests", "interop", "node");

    public string Stderr
    {
        get
        {
            lock (_lock)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Starts <c>node script args</c>; fails with instructions when the pinned npm packages are not installed.</summary>
    public static NodeProcess Start(string script, params string[] args)
    {
        RequireInstalled();
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = ScriptDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,

            // The server script exits when its stdin closes, so it cannot outlive a test run that dies before Dispose.
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException("Process.Start returned no process for node.");
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException($"Node.js ('node') is not on PATH ({ex.Message}). Run ./test.sh, which installs Node.js and the interop packages.", ex);
        }

        var node = new NodeProcess(process);
        process.OutputDataReceived += (_, e) => node.OnStdout(e.Data);
        process.ErrorDataReceived += (_, e) => node.OnStderr(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Runs a script to its end (bounded) and returns its stdout lines; a non-zero exit fails the test with its stderr.</summary>
    public static async Task<IReadOnlyList<string>> RunAsync(string script, params string[] args)
    {
        await using var node = Start(script, args);
        using var timeout = new CancellationTokenSource(TestTimeouts.Default);
        try
        {
            await node._process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new InvalidOperationException($"node {script} {string.Join(' ', args)} did not finish within {TestTimeouts.Default}. stderr: {node.Stderr}");
        }

        // WaitForExitAsync also waits for the redirected streams to reach their end, so every line is in.
        if (node._process.ExitCode != 0)
        {
            throw new InvalidOperationException($"node {script} {string.Join(' ', args)} exited with {node._process.ExitCode}. stderr: {node.Stderr}");
        }

        lock (node._lock)
        {
            return [.. node._stdout];
        }
    }

    /// <summary>Waits (bounded) for a stdout line matching <paramref name="predicate"/>, seen before or after the call.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, string description)
    {
        var deadline = DateTime.UtcNow + TestTimeouts.Default;
        while (true)
        {
            Task signal;
            lock (_lock)
            {
                var line = _stdout.FirstOrDefault(predicate);
                if (line is not null)
                {
                    return line;
                }

                signal = _lineArrived.Task;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || _process.HasExited)
            {
                throw new InvalidOperationException($"node never printed {description} (exited: {_process.HasExited}). stderr: {Stderr}");
            }

            await Task.WhenAny(signal, Task.Delay(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1)));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or Win32Exception)
        {
            // Already gone, or stuck beyond reach: nothing more a test can do about it.
        }
        finally
        {
            _process.Dispose();
        }
    }

    private static void RequireInstalled()
    {
        foreach (var package in new[] { "@grpc/grpc-js", "@grpc/proto-loader", "@grpc/reflection", "grpc-health-check" })
        {
            if (!File.Exists(Path.Combine(ScriptDirectory, "node_modules", package, "package.json")))
            {
                throw new InvalidOperationException(
                    $"The gRPC interop tests need the npm package {package} in {Path.Combine(ScriptDirectory, "node_modules")}. " +
                    "Run ./test.sh (it runs 'npm ci' in tests/interop/node), or 'npm ci' in that folder yourself.");
            }
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void OnStdout(string? line)
    {
        if (line is null)
        {
            return;
        }

        TaskCompletionSource signal;
        lock (_lock)
        {
            _stdout.Add(line);
            signal = _lineArrived;
            _lineArrived = NewSignal();
        }

        signal.TrySetResult();
    }

    private void OnStderr(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            _stderr.AppendLine(line);
        }
    }
}
