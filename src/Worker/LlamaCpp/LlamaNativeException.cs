namespace GpuFleet.Worker.LlamaCpp;

/// <summary>The native llama.cpp libraries are missing, do not match, or refused an operation.</summary>
internal sealed class LlamaNativeException : Exception
{
    public LlamaNativeException(string message)
        : base(message)
    {
    }

    public LlamaNativeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public LlamaNativeException()
    {
    }
}
