using System.Diagnostics;

namespace GpuFleet.Bench.Gateway;

/// <summary>
/// The processes a benchmark starts (worker, gateway, nginx): their output is kept (last lines, for error
/// messages), and every one of them is killed with its children when the set is disposed, when the
/// benchmark process exits (SIGTERM) or on Ctrl-C, so that none outlives the benchmark.
/// </summary>
internal sealed class ChildProcesses : IAsyncDisposable
{
    private readonly List<ChildProcess> _children = [];
    private readonly Lock _gate = new();

    public ChildProcesses() => AppDomain.CurrentDomain.ProcessExit += OnProcessExit;

    /// <summary>Starts <paramref name="file"/>; <paramref name="environment"/> entries are added to the child's environment.</summary>
    public ChildProcess Start(string name, string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var child = new ChildProcess(name, Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}."));
        lock (_gate)
        {
            _children.Add(child);
        }

        return child;
    }

    /// <summary>Runs a command to its end; throws with its output when it fails.</summary>
    public async Task RunToEndAsync(string name, string file, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var child = Start(name, file, arguments);
        await child.Process.WaitForExitAsync(cancellationToken);
        if (child.Process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{name} exited with {child.Process.ExitCode}:\n{child.Output}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        foreach (var child in Snapshot())
        {
            child.Kill();
            await child.Process.WaitForExitAsync();
            child.Process.Dispose();
        }
    }

    private List<ChildProcess> Snapshot()
    {
        lock (_gate)
        {
            var all = _children.ToList();
            all.Reverse(); // the proxies before the worker they front
            return all;
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        foreach (var child in Snapshot())
        {
            child.Kill();
        }
    }
}

/// <summary>One started process and the tail of its output.</summary>
internal sealed class ChildProcess
{
    private const int KeptLines = 200;
    private readonly Queue<string> _lines = new();

    public ChildProcess(string name, Process process)
    {
        Name = name;
        Process = process;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    public Process Process { get; }

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    /// <summary>Polls <paramref name="url"/> until it answers 2xx; throws with the process output if it exits or the time runs out.</summary>
    public async Task WaitForHttpAsync(HttpClient http, Uri url, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with {Process.ExitCode}:\n{Output}");
            }

            try
            {
                using var response = await http.GetAsync(url, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Listening but not answering yet (the client's own timeout).
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"{Name} did not answer {url} within {timeout.TotalSeconds:F0} s:\n{Output}");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>
    /// CPU time (user + system) used so far by the process and its direct children (nginx's worker processes), read
    /// from /proc; zero where /proc is missing. A per-request CPU figure is far steadier than latency on a shared machine.
    /// </summary>
    public TimeSpan CpuTime()
    {
        var total = TimeSpan.Zero;
        foreach (var pid in Directory.Exists("/proc") ? Directory.EnumerateDirectories("/proc") : [])
        {
            if (!int.TryParse(Path.GetFileName(pid), out var id) || (id != Process.Id && ParentOf(pid) != Process.Id))
            {
                continue;
            }

            try
            {
                using var process = Process.GetProcessById(id);
                total += process.TotalProcessorTime;
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                // Gone meanwhile.
            }
        }

        return total;
    }

    public void Kill()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>The parent pid from /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')').</summary>
    private static int ParentOf(string procDirectory)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(procDirectory, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ', 3);
            return int.TryParse(fields[1], out var parent) ? parent : -1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lines)
        {
            _lines.Enqueue(line);
            if (_lines.Count > KeptLines)
            {
                _lines.Dequeue();
            }
        }
    }
}
