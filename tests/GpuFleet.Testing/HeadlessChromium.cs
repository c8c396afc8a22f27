using System.Diagnostics;

namespace GpuFleet.Testing;

/// <summary>Debian's Chromium (package chromium, installed by test.sh) run headless against 127.0.0.1 pages.</summary>
public static class HeadlessChromium
{
    /// <summary>
    /// Loads <paramref name="page"/>, lets its scripts run for <paramref name="scriptTime"/> of virtual time, and returns
    /// the DOM as serialized HTML.
    /// </summary>
    public static async Task<string> DumpDomAsync(Uri page, TimeSpan scriptTime) =>
        (await RunAsync(page, scriptTime, "--dump-dom")).Output;

    /// <summary>Loads <paramref name="page"/> like <see cref="DumpDomAsync"/> and saves a PNG screenshot of the window.</summary>
    public static async Task ScreenshotAsync(Uri page, TimeSpan scriptTime, string pngPath, int width = 1400, int height = 800)
    {
        ArgumentNullException.ThrowIfNull(pngPath);
        var (exitCode, output) = await RunAsync(page, scriptTime, "--screenshot=" + Path.GetFullPath(pngPath), $"--window-size={width},{height}", "--hide-scrollbars");
        if (exitCode != 0 || !File.Exists(pngPath))
        {
            throw new InvalidOperationException($"chromium wrote no screenshot (exit {exitCode}):\n{output}");
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(Uri page, TimeSpan scriptTime, params string[] extra)
    {
        ArgumentNullException.ThrowIfNull(page);
        var profile = Directory.CreateTempSubdirectory("gpufleet-chromium-").FullName;
        try
        {
            var start = new ProcessStartInfo("chromium") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in new[]
                     {
                         // Root in CI containers: Chromium's sandbox needs user namespaces it does not get there.
                         "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                         "--user-data-dir=" + profile,
                         $"--virtual-time-budget={(int)scriptTime.TotalMilliseconds}",
                     }.Concat(extra).Append(page.ToString()))
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start) ?? throw new InvalidOperationException("chromium did not start (test.sh installs the chromium package).");
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TestTimeouts.Default);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"chromium did not finish with {page} in time:\n{await errors}");
            }

            var stdout = await output;
            return (process.ExitCode, stdout.Length > 0 ? stdout : await errors);
        }
        finally
        {
            Directory.Delete(profile, recursive: true);
        }
    }
}
