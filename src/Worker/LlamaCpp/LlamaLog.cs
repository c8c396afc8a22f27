using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>Log messages of the llama.cpp binding (never prompt or completion text).</summary>
internal static partial class LlamaLog
{
    [LoggerMessage(EventId = 1000, EventName = "NativeMessage", Message = "llama.cpp: {Message}")]
    public static partial void NativeMessage(ILogger logger, LogLevel level, string message);
}
