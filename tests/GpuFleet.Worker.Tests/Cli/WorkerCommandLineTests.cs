using GpuFleet.Worker.Cli;

namespace GpuFleet.Worker.Tests.Cli;

/// <summary>
/// The worker's one command-line parser: serving options become configuration, a bad command line exits 2 naming the
/// problem and the command's options, help exits 0. Most run the real executable, as a user or a deployment would.
/// </summary>
public sealed class WorkerCommandLineTests
{
    [Theory]
    [InlineData("Unknown option '--drain-timout'", "--model", "/tmp/x.gguf", "--drain-timout", "60")]
    [InlineData("Option --slots needs a value", "--model", "/tmp/x.gguf", "--slots")]
    [InlineData("Unexpected argument 'extra'", "--model", "/tmp/x.gguf", "extra")]
    public async Task A_server_command_line_with_an_unknown_or_incomplete_option_is_refused_before_anything_starts(string message, params string[] args)
    {
        var (exit, _, error) = await WorkerProgram.RunAsync(args);

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
        var (exit, _, error) = await WorkerProgram.RunAsync(args);

        Assert.Equal(2, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Known_switches_flags_and_key_value_forms_become_configuration_with_the_last_occurrence_winning()
    {
        // A wrapper (the tests' WorkerProcess, a container's CMD) sets --threads and --slots, and the caller's own come after.
        var (settings, problems) = WorkerCommandLine.ParseServe(["--model", "m.gguf", "--threads", "2", "--simulate", "--slots=4", "--simulate", "false", "--name", "w0",
            "--threads", "1", "--slots", "8"]);

        Assert.Empty(problems);
        Assert.Equal(
            new Dictionary<string, string?>
            {
                ["Worker:ModelPath"] = "m.gguf", ["Worker:Simulate"] = "false", ["Engine:Slots"] = "8", ["Engine:Threads"] = "1", ["Worker:Name"] = "w0",
            },
            settings.OrderBy(s => s.Key, StringComparer.Ordinal).ToDictionary());
    }

    [Fact]
    public void A_flag_alone_is_true_values_may_start_with_a_dash_or_at_sign_and_a_tool_is_not_a_server_command_line()
    {
        Assert.Equal("true", WorkerCommandLine.ParseServe(["--model", "m.gguf", "--simulate"]).Settings["Worker:Simulate"]);
        var (settings, problems) = WorkerCommandLine.ParseServe(["--gpu-layers", "-1", "--name", "@w0"]);
        Assert.Empty(problems);
        Assert.Equal("-1", settings["Worker:GpuLayers"]);
        Assert.Equal("@w0", settings["Worker:Name"]);
        Assert.NotEmpty(WorkerCommandLine.ParseServe(["info"]).Problems);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("help")]
    [InlineData("demo-model", "--help")]
    public async Task Help_prints_the_usage_and_exits_0(params string[] args)
    {
        var (exit, output, error) = await WorkerProgram.RunAsync(args);

        Assert.True(exit == 0, error);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains(args[0] == "demo-model" ? "--arch <qwen3|qwen35>" : "--drain-timeout <value>", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_arguments_print_the_usage_as_a_usage_error()
    {
        var (exit, output, _) = await WorkerProgram.RunAsync();

        Assert.Equal(2, exit);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_architecture_is_refused_with_usage_exit_code()
    {
        var (exit, _, error) = await WorkerProgram.RunAsync("demo-model", "/tmp/x.gguf", "--arch", "llama9");

        Assert.Equal(2, exit);
        Assert.Contains("--arch must be one of qwen3, qwen35", error, StringComparison.Ordinal);
    }
}
