using System.Diagnostics;
using GpuFleet.Testing;

namespace GpuFleet.Deploy.Tests.Compose;

/// <summary>
/// A Docker engine of the test's own: Debian's dockerd started with its own data and exec roots and socket, stopped by
/// its PID on dispose. Its data root (artifacts/docker) is kept between runs so that images built once are reused.
/// No default bridge (compose makes its own network), so no docker0 is left behind.
/// </summary>
public sealed class DockerEngine : IAsyncLifetime
{
    private Process? _daemon;
    private string? _execRoot;

    public string Host { get; private set; } = "";

    /// <summary>What every docker or docker-compose call needs: this engine's socket.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["DOCKER_HOST"] = Host };

    public async Task InitializeAsync()
    {
        if (!File.Exists("/usr/sbin/dockerd") || !File.Exists("/usr/bin/docker-compose"))
        {
            throw new InvalidOperationException("The compose test needs Debian's docker.io, docker-compose and mmdebstrap: run ./test.sh (it installs them).");
        }

        // A short exec root: containerd's sockets live there and a unix socket path has at most 107 bytes.
        _execRoot = Directory.CreateTempSubdirectory("gfd-").FullName;
        Host = $"unix://{_execRoot}/docker.sock";
        var dataRoot = Path.Combine(RepositoryPaths.Root, "artifacts", "docker");
        Directory.CreateDirectory(dataRoot);
        var start = new ProcessStartInfo("/usr/sbin/dockerd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--data-root", dataRoot, "--exec-root", $"{_execRoot}/exec", "--pidfile", $"{_execRoot}/dockerd.pid", "-H", Host, "--bridge", "none" })
        {
            start.ArgumentList.Add(arg);
        }

        _daemon = Process.Start(start) ?? throw new InvalidOperationException("dockerd did not start.");
        var log = new System.Text.StringBuilder();
        _daemon.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        _daemon.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        _daemon.BeginOutputReadLine();
        _daemon.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var info = await ExternalCommand.RunAsync("docker", ["version", "--format", "{{.Server.Version}}"], environment: Environment);
            if (info.ExitCode == 0)
            {
                return;
            }

            if (_daemon.HasExited || DateTime.UtcNow > deadline)
            {
                lock (log)
                {
                    throw new InvalidOperationException($"dockerd did not come up:\n{log}");
                }
            }

            await Task.Delay(200);
        }
    }

    public async Task DisposeAsync()
    {
        if (_daemon is { HasExited: false })
        {
            // SIGTERM: dockerd stops its containers and cleans its mounts and network rules.
            Process.Start("kill", ["-TERM", _daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])?.WaitForExit();
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _daemon.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _daemon.Kill(entireProcessTree: true);
            }
        }

        _daemon?.Dispose();
        if (_execRoot is not null)
        {
            // dockerd leaves its network namespace file mounted under the exec root.
            foreach (var mount in File.ReadAllLines("/proc/mounts").Select(l => l.Split(' ')[1]).Where(m => m.StartsWith(_execRoot, StringComparison.Ordinal)))
            {
                await ExternalCommand.RunAsync("umount", ["--lazy", mount]);
            }

            try
            {
                Directory.Delete(_execRoot, recursive: true);
            }
            catch (IOException)
            {
                // a mount dockerd failed to release: left for the OS's temporary-file cleanup
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
