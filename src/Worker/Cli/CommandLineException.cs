namespace GpuFleet.Worker.Cli;

/// <summary>A command line that cannot be run as given; the message says why (exit code 2).</summary>
internal sealed class CommandLineException : Exception
{
    public CommandLineException(string message)
        : base(message)
    {
    }

    public CommandLineException()
    {
    }

    public CommandLineException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
