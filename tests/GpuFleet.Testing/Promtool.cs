using System.Diagnostics;

namespace GpuFleet.Testing;

/// <summary>Prometheus' own checker (<c>promtool</c>, Debian package prometheus, installed by test.sh).</summary>
public static class Promtool
{
    /// <summary>Runs <c>promtool check metrics</c> over an exposition: its exit code and what it printed.</summary>
    public static Task<(int ExitCode, string Output)> CheckMetricsAsync(string exposition) => RunAsync(["check", "metrics"], exposition);

    /// <summary>Runs <c>promtool check rules</c> on rule files.</summary>
    public static Task<(int ExitCode, string Output)> CheckRulesAsync(params string[] files) => RunAsync(["check", "rules", .. files], null);

    /// <summary>Runs <c>promtool test rules</c> on rule unit-test files.</summary>
    public static Task<(int ExitCode, string Output)> TestRulesAsync(params string[] files) => RunAsync(["test", "rules", .. files], null);

    private static async Task<(int ExitCode, string Output)> RunAsync(IEnumerable<string> arguments, string? input)
    {
        var start = new ProcessStartInfo("promtool")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("promtool did not start (test.sh installs the prometheus package).");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TestTimeouts.Default);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await errors);
    }
}
