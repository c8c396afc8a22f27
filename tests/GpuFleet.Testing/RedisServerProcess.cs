using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace GpuFleet.Testing;

/// <summary>A real redis-server on 127.0.0.1 and a free port, in memory only, killed and restartable by tests.</summary>
public sealed class RedisServerProcess : IAsyncDisposable
{
    private readonly string[] _extraArgs;
    private readonly StringBuilder _output = new();
    private Process? _process;

    private RedisServerProcess(int port, string[] extraArgs)
    {
        Port = port;
        _extraArgs = extraArgs;
    }

    public int Port { get; }

    public string Endpoint => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>The running server's process id; null while it is not running.</summary>
    public int? ProcessId => _process?.Id;

    /// <summary>Whether a redis-server is on the PATH (benchmarks run without one; tests need it).</summary>
    public static bool IsInstalled() => FindOnPath() is not null;

    /// <summary>Starts a server (on <paramref name="port"/> or a free one) and waits until it answers.</summary>
    public static async Task<RedisServerProcess> StartAsync(int? port = null, params string[] extraArgs)
    {
        var server = new RedisServerProcess(port ?? FreePort.Next(), extraArgs);
        await server.StartAgainAsync();
        return server;
    }

    /// <summary>An endpoint nothing listens on yet, for a server started later with <see cref="StartAsync"/>.</summary>
    public static RedisServerProcess NotStarted(params string[] extraArgs) => new(FreePort.Next(), extraArgs);

    public async Task StartAgainAsync()
    {
        var start = new ProcessStartInfo(FindExecutable()) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[]
                 {
                     "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--daemonize", "no", "--loglevel", "warning", "--dir", Path.GetTempPath(),
                 }.Concat(_extraArgs))
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await AnswersAsync())
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                Kill();
                throw new InvalidOperationException($"redis-server on port {Port} did not come up: {Output}");
            }

            await Task.Delay(25);
        }
    }

    /// <summary>Kills the server at once (SIGKILL), as a crash would.</summary>
    public void Kill()
    {
        var process = _process;
        _process = null;
        if (process is null)
        {
            return;
        }

        if (!process.HasExited)
        {
            process.Kill();
        }

        process.WaitForExit();
        process.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        return ValueTask.CompletedTask;
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
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

    private static string FindExecutable() => FindOnPath() ?? throw new InvalidOperationException(
        "redis-server is not installed, and the Redis client tests run against a real one: run ./test.sh (it installs redis-server from Debian) or apt-get install redis-server.");

    private static string? FindOnPath()
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    // Any reply to an inline PING counts, -NOAUTH included: the server is accepting commands.
    private async Task<bool> AnswersAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[64];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return read > 0 && buffer[0] is (byte)'+' or (byte)'-';
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            return false;
        }
    }
}
