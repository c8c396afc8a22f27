using System.Diagnostics;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Cli;

/// <summary>The worker's command-line tools besides serving: <c>info</c> and <c>generate</c> (<c>demo-model</c> is one call).</summary>
internal static class WorkerTools
{
    /// <summary><c>info</c>: the llama.cpp libraries, backends and devices.</summary>
    public static int Info(string? nativeDirectory)
    {
        var backend = LlamaBackend.Initialize(nativeDirectory);
        Console.WriteLine($"llama.cpp libraries: {backend.Directory}");
        Console.WriteLine($"backends: {string.Join(", ", backend.Backends)}");
        foreach (var device in backend.Devices)
        {
            Console.WriteLine($"device: {device.Name} ({device.Type}) {device.Description}, {device.TotalBytes / (1 << 20):N0} MiB");
        }

        Console.WriteLine($"system: {backend.SystemInfo}");
        return 0;
    }

    /// <summary>
    /// <c>generate</c>: loads a model, starts the engine and streams one or more generations to the terminal (the
    /// quickest check that a model and the natives work, without the network APIs).
    /// </summary>
    public static async Task<int> GenerateAsync(GenerateSettings settings)
    {
        if (settings.Streams < 1)
        {
            throw new CommandLineException("--streams must be at least 1.");
        }

        using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var backend = LlamaBackend.Initialize(settings.NativeDirectory, loggerFactory);
        using var model = LlamaModel.Load(settings.ModelPath, settings.GpuLayers);
        Console.Error.WriteLine($"model: {model.Name} ({model.Description}, {model.ParameterCount:N0} parameters) on {string.Join(", ", backend.Devices.Select(d => d.Name))}");

        var options = new EngineOptions
        {
            Slots = settings.Slots > 0 ? settings.Slots : settings.Streams,
            ContextSize = settings.ContextSize,
        };
        await using var engine = await InferenceEngine.StartAsync(model, options, loggerFactory.CreateLogger("GpuFleet.Worker.Engine"));

        var text = $"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{settings.Prompt}<|im_end|>\n<|im_start|>assistant\n";
        var tokens = model.Tokenize(text);
        var sampling = new SamplingParameters { Temperature = settings.Temperature, Seed = (uint)settings.Seed };

        var stopwatch = Stopwatch.StartNew();
        var admissions = Enumerable.Range(0, settings.Streams)
            .Select(i => engine.Submit(new GenerationRequest
            {
                PromptTokens = tokens,
                MaxTokens = settings.MaxTokens,
                Sampling = sampling with { Seed = sampling.Seed + (uint)i },
            }))
            .ToList();
        var rejected = admissions.FirstOrDefault(a => !a.Accepted);
        if (rejected is not null)
        {
            throw new CommandLineException($"refused: {rejected.Rejection!.Message}");
        }

        // The first stream goes to the terminal as it is generated; the others run alongside it.
        await foreach (var item in admissions[0].Stream!.ReadAllAsync())
        {
            switch (item)
            {
                case TokenEvent token:
                    Console.Write(token.Text);
                    break;
                case CompletionEvent done:
                    Console.WriteLine(done.TrailingText);
                    break;
            }
        }

        var results = await Task.WhenAll(admissions.Select(a => a.Stream!.Completion));
        var generated = results.Sum(r => r.Usage.CompletionTokens);
        Console.Error.WriteLine(
            $"{settings.Streams} stream(s), {generated} tokens in {stopwatch.Elapsed.TotalSeconds:F2} s ({generated / stopwatch.Elapsed.TotalSeconds:F1} tokens/s); " +
            $"first token after {results[0].Usage.TimeToFirstToken.TotalMilliseconds:F0} ms; finish: {results[0].Reason}");
        return 0;
    }
}
