using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine;

/// <summary>What <see cref="EngineHost"/> logs while it loads the llama.cpp libraries and the model.</summary>
internal static partial class EngineHostLog
{
    [LoggerMessage(EventId = 1, EventName = "BackendLoaded", Level = LogLevel.Information,
        Message = "llama.cpp loaded from {Directory}: backends {Backends}; devices {Devices}")]
    public static partial void BackendLoaded(ILogger logger, string directory, string backends, string devices);

    [LoggerMessage(EventId = 2, EventName = "ModelLoaded", Level = LogLevel.Information,
        Message = "Model {Name} loaded: architecture {Architecture}, {Parameters} parameters, {Bytes} bytes")]
    public static partial void ModelLoaded(ILogger logger, string name, string architecture, long parameters, long bytes);

    [LoggerMessage(EventId = 3, EventName = "NoGpuForOffload", Level = LogLevel.Warning,
        Message = "Worker:GpuLayers is {GpuLayers} but no GPU backend registered; the model runs on the CPU")]
    public static partial void NoGpuForOffload(ILogger logger, int gpuLayers);
}
