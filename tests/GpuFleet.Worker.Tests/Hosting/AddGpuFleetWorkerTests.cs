using GpuFleet.Testing;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.Hosting;
using GpuFleet.Worker.Tests.Engine;
using GpuFleet.Worker.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace GpuFleet.Worker.Tests.Hosting;

[Collection(LlamaCollection.Name)]
public sealed class AddGpuFleetWorkerTests(TestModels models)
{
    [Fact]
    public async Task Host_loads_the_model_serves_through_the_engine_and_stops()
    {
        using var host = Build(new()
        {
            ["Worker:ModelPath"] = models.PathOf(DemoArchitecture.Qwen35),
            ["Engine:Slots"] = "2",
            ["Engine:ContextSize"] = "512",
        });

        await host.StartAsync(TestTimeouts.Token());
        var engineHost = host.Services.GetRequiredService<EngineHost>();
        var engine = engineHost.Engine;
        var prompt = engine.Model.Tokenize("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
        var result = await engine.RunAsync(new GenerationRequest { PromptTokens = prompt, MaxTokens = 5, Sampling = SamplingParameters.Greedy, IgnoreEndOfGeneration = true });
        await host.StopAsync(TestTimeouts.Token());

        Assert.Equal(5, result.Tokens.Count);
        Assert.Equal(2, engine.GetStatus().TotalSlots);
        Assert.Equal(512, engine.GetStatus().ContextPerRequest);
        Assert.Contains("CPU", engineHost.Backend!.Backends);
        Assert.Equal(RejectionReason.ShuttingDown, engine.Submit(new GenerationRequest { PromptTokens = prompt }).Rejection?.Reason);
    }

    [Fact]
    public async Task Invalid_settings_stop_the_start_with_every_problem_named()
    {
        using var host = Build(new()
        {
            ["Worker:ModelPath"] = "/nowhere/model.gguf",
            ["Worker:GpuLayers"] = "-7",
            ["Engine:Slots"] = "0",
        });

        // One exception per options class, each listing all of its problems.
        var error = await Assert.ThrowsAsync<AggregateException>(() => host.StartAsync(TestTimeouts.Token()));

        var all = string.Join(" | ", error.InnerExceptions.OfType<OptionsValidationException>().SelectMany(e => e.Failures));
        Assert.Contains("Worker:ModelPath '/nowhere/model.gguf' does not exist", all, StringComparison.Ordinal);
        Assert.Contains("Worker:GpuLayers", all, StringComparison.Ordinal);
        Assert.Contains("Engine:Slots", all, StringComparison.Ordinal);
    }

    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddGpuFleetWorker(builder.Configuration);
        return builder.Build();
    }
}
