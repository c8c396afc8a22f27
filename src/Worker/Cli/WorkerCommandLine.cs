using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Cli;

/// <summary>The worker's command line: tools (demo-model, info, generate) and, later, the server itself.</summary>
internal static class WorkerCommandLine
{
    private const string Usage = """
        Usage:
          GpuFleet.Worker --model <file.gguf> [--http-port N] [--grpc-port N] [--slots N] [--ctx-size N] [--gpu-layers N] [--name NAME] [--host ADDRESS]
              serves the OpenAI API (HTTP/1.1 port) and gRPC (HTTP/2 port); every option is also configuration (Worker:*, Engine:*)
          GpuFleet.Worker demo-model <out.gguf> --arch qwen35|qwen3 --size tiny|small [--quant f16|q8_0|q4_k_m] [--seed N] [--tokenizer DIR]
              --tokenizer: the folder scripts/fetch-tokenizer.sh prints (the real Qwen3.5 vocabulary and chat template);
              without it the model gets a small byte-level tokenizer whose prompts are ~3.5x longer than on the real model
          GpuFleet.Worker generate --model <file.gguf> [--prompt TEXT] [--max-tokens N] [--streams N] [--slots N] [--ctx-size N]
          GpuFleet.Worker info
        Common options: --native-dir DIR (folder of the llama.cpp libraries; default: llama-native/ beside the worker)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0].StartsWith("--", StringComparison.Ordinal))
        {
            return await Hosting.WorkerServer.RunAsync(args);
        }

        try
        {
            var command = args[0];
            var parsed = new CommandLineArguments(args[1..], new HashSet<string>(StringComparer.Ordinal));
            return command switch
            {
                "demo-model" => DemoModel(parsed),
                "info" => Info(parsed),
                "generate" => await GenerateCommand.RunAsync(parsed),
                _ => throw new CommandLineException($"Unknown command '{command}'.\n{Usage}"),
            };
        }
        catch (CommandLineException ex)
        {
            await Console.Error.WriteLineAsync(ex.Message);
            return 2;
        }
        catch (LlamaNativeException ex)
        {
            await Console.Error.WriteLineAsync($"llama.cpp: {ex.Message}");
            return 1;
        }
    }

    private static int DemoModel(CommandLineArguments args)
    {
        args.RejectUnknown("arch", "size", "quant", "seed", "tokenizer", "native-dir");
        if (args.Positionals.Count != 1)
        {
            throw new CommandLineException("demo-model needs exactly one output path.\n" + Usage);
        }

        LlamaBackend.Initialize(args.Get("native-dir"));
        var options = new DemoModelOptions(
            args.Positionals[0],
            args.GetEnum("arch", DemoArchitecture.Qwen35),
            args.GetEnum("size", DemoModelSize.Tiny))
        {
            Quantization = args.Has("quant") ? args.GetEnum("quant", DemoQuantization.F16) : null,
            Seed = args.GetInt("seed", 42),
            Tokenizer = args.Get("tokenizer") is { } tokenizer ? QwenTokenizerFiles.InDirectory(tokenizer) : null,
        };
        var info = DemoModelBuilder.Build(options);
        Console.WriteLine(
            $"wrote {info.Path}: {info.Architecture}, {info.Parameters:N0} parameters, {info.FileBytes:N0} bytes ({info.Description}) in {info.Elapsed.TotalSeconds:F1} s");
        return 0;
    }

    private static int Info(CommandLineArguments args)
    {
        args.RejectUnknown("native-dir");
        var backend = LlamaBackend.Initialize(args.Get("native-dir"));
        Console.WriteLine($"llama.cpp libraries: {backend.Directory}");
        Console.WriteLine($"backends: {string.Join(", ", backend.Backends)}");
        foreach (var device in backend.Devices)
        {
            Console.WriteLine($"device: {device.Name} ({device.Type}) {device.Description}, {device.TotalBytes / (1 << 20):N0} MiB");
        }

        Console.WriteLine($"system: {backend.SystemInfo}");
        return 0;
    }
}
