using System.Diagnostics;
using GpuFleet.Worker.Engine;
using GpuFleet.Worker.LlamaCpp;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Cli;

/// <summary>
/// <c>generate</c>: loads a model, starts the engine and streams one or more generations to the
/// terminal (the quick start until the worker's network APIs exist).
/// </summary>
internal static class GenerateCommand
{
    public static async Task<int> RunAsync(CommandLineArguments args)
    {
        args.RejectUnknown("model", "prompt", "max-tokens", "streams", "slots", "ctx-size", "native-dir", "gpu-layers", "temperature", "seed");
        var modelPath = args.Get("model") ?? throw new CommandLineException("generate needs --model <file.gguf>.");
        var streams = args.GetInt("streams", 1);
        if (streams < 1)
        {
            throw new CommandLineException("--streams must be at least 1.");
        }

        using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var backend = LlamaBackend.Initialize(args.Get("native-dir"), loggerFactory);
        using var model = LlamaModel.Load(modelPath, args.GetInt("gpu-layers", 0));
        Console.Error.WriteLine($"model: {model.Name} ({model.Description}, {model.ParameterCount:N0} parameters) on {string.Join(", ", backend.Devices.Select(d => d.Name))}");

        var options = new EngineOptions
        {
            Slots = args.GetInt("slots", Math.Max(streams, 1)),
            ContextSize = args.GetInt("ctx-size", 0),
        };
        await using var engine = await InferenceEngine.StartAsync(model, options, loggerFactory.CreateLogger("GpuFleet.Worker.Engine"));

        var prompt = args.Get("prompt") ?? "Write a haiku about a fleet of GPUs.";
        var text = $"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n";
        var tokens = model.Tokenize(text);
        var sampling = new SamplingParameters
        {
            Temperature = float.Parse(args.Get("temperature") ?? "0.8", System.Globalization.CultureInfo.InvariantCulture),
            Seed = (uint)args.GetInt("seed", 1),
        };

        var stopwatch = Stopwatch.StartNew();
        var admissions = Enumerable.Range(0, streams)
            .Select(i => engine.Submit(new GenerationRequest
            {
                PromptTokens = tokens,
                MaxTokens = args.GetInt("max-tokens", 48),
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
            $"{streams} stream(s), {generated} tokens in {stopwatch.Elapsed.TotalSeconds:F2} s ({generated / stopwatch.Elapsed.TotalSeconds:F1} tokens/s); " +
            $"first token after {results[0].Usage.TimeToFirstToken.TotalMilliseconds:F0} ms; finish: {results[0].Reason}");
        return 0;
    }
}
