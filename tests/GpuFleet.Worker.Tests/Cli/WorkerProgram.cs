using System.Diagnostics;
using GpuFleet.Testing;

namespace GpuFleet.Worker.Tests.Cli;

/// <summary>Runs the worker executable with arguments to its exit, capturing what it printed.</summary>
internal static class WorkerProgram
{
    public static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "GpuFleet.Worker.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(TestTimeouts.Token());
        return (process.ExitCode, await output, await error);
    }
}
