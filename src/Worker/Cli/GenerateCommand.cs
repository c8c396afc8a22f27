namespace GpuFleet.Worker.Cli;

internal static class GenerateCommand
{
    public static Task<int> RunAsync(CommandLineArguments args) => throw new CommandLineException("generate: not built yet");
}
