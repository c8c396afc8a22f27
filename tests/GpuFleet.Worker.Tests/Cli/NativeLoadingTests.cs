using System.Diagnostics;
using GpuFleet.Testing;
using GpuFleet.Worker.Cli;

namespace GpuFleet.Worker.Tests.Cli;

/// <summary>The worker, run as a real process, reports its backend or fails clearly when the libraries are missing.</summary>
[Collection(LlamaCollection.Name)]
public sealed class NativeLoadingTests
{
    [Fact]
    public async Task Info_reports_the_cpu_backend_and_device()
    {
        var (exit, output, error) = await RunWorkerAsync("info");

        Assert.True(exit == 0, error);
        Assert.Contains("backends: CPU", output, StringComparison.Ordinal);
        Assert.Contains("device: CPU (CPU)", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_native_folder_fails_with_a_clear_message()
    {
        var (exit, _, error) = await RunWorkerAsync("info", "--native-dir", "/nonexistent/llama");

        Assert.Equal(1, exit);
        Assert.Contains("does not exist", error, StringComparison.Ordinal);
        Assert.Contains("fetch-natives.sh", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Folder_without_the_libraries_fails_with_a_clear_message()
    {
        var empty = Directory.CreateTempSubdirectory("gpufleet-empty-natives-").FullName;
        try
        {
            var (exit, _, error) = await RunWorkerAsync("info", "--native-dir", empty);

            Assert.Equal(1, exit);
            Assert.Contains("native libraries are missing", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public async Task Libraries_of_another_llama_cpp_release_are_refused_before_loading()
    {
        var folder = Directory.CreateTempSubdirectory("gpufleet-other-release-").FullName;
        try
        {
            foreach (var library in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "llama-native"), "*.so"))
            {
                File.CreateSymbolicLink(Path.Combine(folder, Path.GetFileName(library)), library);
            }

            File.WriteAllText(Path.Combine(folder, "_nlcBuildMetadata.json"),
                """{"buildOptions":{"llamaCpp":{"repo":"ggml-org/llama.cpp","release":"v0.4.0"}}}""");
            var (exit, _, error) = await RunWorkerAsync("info", "--native-dir", folder);

            Assert.Equal(1, exit);
            Assert.Contains("llama.cpp v0.4.0", error, StringComparison.Ordinal);
            Assert.Contains("mirror v0.5.0", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Unknown_architecture_is_refused_with_usage_exit_code()
    {
        var (exit, _, error) = await RunWorkerAsync("demo-model", "/tmp/x.gguf", "--arch", "llama9");

        Assert.Equal(2, exit);
        Assert.Contains("--arch must be one of qwen3, qwen35", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Unknown option '--drain-timout'", "--model", "/tmp/x.gguf", "--drain-timout", "60")]
    [InlineData("Option --slots needs a value", "--model", "/tmp/x.gguf", "--slots")]
    [InlineData("Unexpected argument 'extra'", "--model", "/tmp/x.gguf", "extra")]
    public async Task A_server_command_line_with_an_unknown_or_incomplete_option_is_refused_before_anything_starts(string message, params string[] args)
    {
        var (exit, _, error) = await RunWorkerAsync(args);

        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Unknown option '--foo'", "info", "--foo", "1")]
    [InlineData("--streams must be an integer, not 'many'", "generate", "--model", "/tmp/x.gguf", "--streams", "many")]
    [InlineData("--streams must be at least 1", "generate", "--model", "/tmp/x.gguf", "--streams", "0")]
    [InlineData("Option '--model' is required", "generate")]
    [InlineData("Unexpected argument 'frobnicate'", "frobnicate")]
    public async Task A_tool_command_line_with_a_bad_option_is_refused_with_usage_exit_code(string message, params string[] args)
    {
        var (exit, _, error) = await RunWorkerAsync(args);

        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Known_switches_flags_and_key_value_forms_become_configuration_with_the_last_occurrence_winning()
    {
        var (settings, problems) = WorkerCommandLine.ParseServe(["--model", "m.gguf", "--simulate", "--slots=4", "--simulate", "false", "--name", "w0"]);

        Assert.Empty(problems);
        Assert.Equal(
            new Dictionary<string, string?> { ["Worker:ModelPath"] = "m.gguf", ["Worker:Simulate"] = "false", ["Engine:Slots"] = "4", ["Worker:Name"] = "w0" },
            settings.OrderBy(s => s.Key, StringComparer.Ordinal).ToDictionary());
    }

    [Fact]
    public void A_flag_alone_is_true_and_a_tool_is_not_a_server_command_line()
    {
        Assert.Equal("true", WorkerCommandLine.ParseServe(["--model", "m.gguf", "--simulate"]).Settings["Worker:Simulate"]);
        Assert.NotEmpty(WorkerCommandLine.ParseServe(["info"]).Problems);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("help")]
    [InlineData("demo-model", "--help")]
    public async Task Help_prints_the_usage_and_exits_0(params string[] args)
    {
        var (exit, output, error) = await RunWorkerAsync(args);

        Assert.True(exit == 0, error);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains(args[0] == "demo-model" ? "--arch <qwen3|qwen35>" : "--drain-timeout <value>", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_arguments_print_the_usage_as_a_usage_error()
    {
        var (exit, output, _) = await RunWorkerAsync();

        Assert.Equal(2, exit);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Output, string Error)> RunWorkerAsync(params string[] args)
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
