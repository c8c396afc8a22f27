namespace GpuFleet.Worker.Hosting;

/// <summary>Worker settings, bound from configuration section <c>Worker</c>.</summary>
public sealed class WorkerOptions
{
    public const string SectionName = "Worker";

    /// <summary>The GGUF model this worker serves (required).</summary>
    public string? ModelPath { get; set; }

    /// <summary>Folder of the llama.cpp libraries; default <c>llama-native/</c> beside the worker.</summary>
    public string? NativeDirectory { get; set; }

    /// <summary>Layers offloaded to the GPU: 0 = CPU only, -1 = all.</summary>
    public int GpuLayers { get; set; }

    /// <summary>The worker's name in status, logs and routing headers.</summary>
    public string Name { get; set; } = Environment.MachineName;

    /// <summary>Every problem with these settings, each naming its key.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(ModelPath))
        {
            errors.Add("Worker:ModelPath is required (the GGUF file to serve).");
        }
        else if (!File.Exists(ModelPath))
        {
            errors.Add($"Worker:ModelPath '{ModelPath}' does not exist.");
        }

        if (NativeDirectory is not null && !Directory.Exists(NativeDirectory))
        {
            errors.Add($"Worker:NativeDirectory '{NativeDirectory}' does not exist.");
        }

        if (GpuLayers < -1)
        {
            errors.Add($"Worker:GpuLayers must be -1 (all), 0 (CPU) or a layer count, not {GpuLayers}.");
        }

        if (string.IsNullOrWhiteSpace(Name))
        {
            errors.Add("Worker:Name must not be empty.");
        }

        return errors;
    }
}
