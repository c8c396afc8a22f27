using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Engine.Compute;

/// <summary>The real backend: one llama.cpp context over the loaded model's weights.</summary>
internal sealed class LlamaComputeBackend(LlamaModel model) : IComputeBackend
{
    public string Architecture => model.Architecture;

    public bool UsesStateSnapshots => model.IsHybrid || model.IsRecurrent;

    public double TimeScale => 1;

    public IComputeContext CreateContext(EngineOptions options, ILogger logger)
    {
        var (context, state) = EngineContext.Create(model, options, logger);
        return new LlamaComputeContext(context, state);
    }
}
