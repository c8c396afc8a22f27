using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using GpuFleet.Worker.Hosting;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Cli;

/// <summary>
/// The worker's one command-line parser: serving (options only) and the tools demo-model, generate and info. Serving
/// options become configuration keys (Worker:*, Engine:*), so environment variables and appsettings.json set the same
/// things and the options validation at start checks them all. A misspelt option, a missing value or a stray argument
/// exits 2 with the problem and the command's options: .NET's own configuration provider would take any
/// <c>--name value</c> silently, so a typo (<c>--drain-timout 60</c>) would be ignored.
/// </summary>
internal static class WorkerCommandLine
{
    /// <summary>Serving options (each takes a value) and the configuration keys they set.</summary>
    internal static readonly IReadOnlyDictionary<string, string> ServeOptionKeys = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["--model"] = "Worker:ModelPath",
        ["--model-id"] = "Worker:ModelId",
        ["--name"] = "Worker:Name",
        ["--host"] = "Worker:Host",
        ["--http-port"] = "Worker:HttpPort",
        ["--grpc-port"] = "Worker:GrpcPort",
        ["--gpu-layers"] = "Worker:GpuLayers",
        ["--native-dir"] = "Worker:NativeDirectory",
        ["--drain-timeout"] = "Worker:DrainTimeoutSeconds",
        ["--enable-thinking"] = "Worker:EnableThinking",
        ["--redis"] = "Worker:Redis",
        ["--advertise-url"] = "Worker:AdvertiseUrl",
        ["--slots"] = "Engine:Slots",
        ["--ctx-size"] = "Engine:ContextSize",
        ["--batch-size"] = "Engine:BatchSize",
        ["--prefill-chunk"] = "Engine:PrefillChunkTokens",
        ["--kv-unified"] = "Engine:UnifiedKv",
        ["--threads"] = "Engine:Threads",
        ["--queue"] = "Engine:QueueCapacity",
        ["--host-cache-bytes"] = "Engine:HostCacheBytes",
        ["--simulate-tokens"] = "Worker:SimulatedReplyTokens",
        ["--simulate-token-ms"] = "Worker:SimulatedTokenDelayMilliseconds",
        ["--simulate-profile"] = "Worker:SimulateProfile",
        ["--simulate-speedup"] = "Worker:SimulatedSpeedup",
    };

    /// <summary>The serving flag: <c>--simulate</c> alone means true; <c>--simulate true|false</c> also works.</summary>
    internal const string SimulateFlag = "--simulate";

    private const string SimulateKey = "Worker:Simulate";

    public static async Task<int> RunAsync(string[] args)
    {
        // Without arguments there is nothing to serve: show what can be done, as a usage error.
        var result = Parse(args.Length == 0 || args is ["help"] ? ["--help"] : args);
        if (Problems(result) is { Count: > 0 } problems)
        {
            await Console.Error.WriteLineAsync($"worker: {string.Join(' ', problems)} Options: {OptionList(result.CommandResult.Command)}.");
            return 2;
        }

        try
        {
            var exit = await result.InvokeAsync(new InvocationConfiguration
            {
                // Failures are ours to report (below, with the exit codes this worker always had), never a stack trace.
                EnableDefaultExceptionHandler = false,
                // SIGTERM belongs to the host, which drains in-flight requests for Worker:DrainTimeoutSeconds; the parser's
                // own handler would cancel the server and end the process after two seconds.
                ProcessTerminationTimeout = null,
            });
            return args.Length == 0 ? 2 : exit;
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

    /// <summary>The configuration a serving command line sets (key to value), and what is wrong with it.</summary>
    internal static (IReadOnlyDictionary<string, string?> Settings, IReadOnlyList<string> Problems) ParseServe(IReadOnlyList<string> args)
    {
        var result = Parse(args);
        var problems = Problems(result);
        if (problems.Count == 0 && result.CommandResult.Command is not RootCommand)
        {
            problems.Add($"'{result.CommandResult.Command.Name}' is a tool, not the server.");
        }

        return (Settings(result), problems);
    }

    private static ParseResult Parse(IReadOnlyList<string> args) =>
        // No response files: an argument starting with @ is a value (a path), as it always was here.
        Build().Parse(LastOccurrences(args), new ParserConfiguration { ResponseFileTokenReplacer = null });

    /// <summary>
    /// Given twice, an option's last occurrence wins, as it always has (a wrapper overrides an option by appending it, as
    /// configuration sources do); System.CommandLine refuses a repeated single-value option, so the earlier ones are
    /// dropped before parsing. Only the options named in <see cref="ServeOptionKeys"/> (and <c>--simulate</c>) are
    /// looked at; a token after one of them is its value, as the parser would take it.
    /// </summary>
    internal static List<string> LastOccurrences(IReadOnlyList<string> args)
    {
        var occurrences = new List<(string Name, int Start, int Count)>();
        for (var i = 0; i < args.Count; i++)
        {
            var equals = args[i].IndexOf('=', StringComparison.Ordinal);
            var name = equals > 0 ? args[i][..equals] : args[i];
            if (name != SimulateFlag && !ServeOptionKeys.ContainsKey(name))
            {
                continue;
            }

            var count = equals > 0 || i + 1 >= args.Count ? 1
                : name == SimulateFlag ? (args[i + 1] is "true" or "false" ? 2 : 1)
                : 2;
            occurrences.Add((name, i, count));
            i += count - 1;
        }

        var dropped = occurrences.GroupBy(o => o.Name, StringComparer.Ordinal).SelectMany(g => g.SkipLast(1))
            .SelectMany(o => Enumerable.Range(o.Start, o.Count)).ToHashSet();
        return [.. args.Where((_, i) => !dropped.Contains(i))];
    }

    private static RootCommand Build()
    {
        var root = new RootCommand(
            "GpuFleet worker. Without a command it serves the model: the OpenAI API on the HTTP/1.1 port and gRPC on the HTTP/2 port. " +
            "Every serving option is also configuration (Worker:*, Engine:*): environment variables (Worker__HttpPort) and appsettings.json set the same keys.");
        foreach (var (name, key) in ServeOptionKeys)
        {
            root.Options.Add(new Option<string>(name) { Description = key, HelpName = "value" });
        }

        root.Options.Add(new Option<bool>(SimulateFlag) { Description = $"{SimulateKey}: answer with the zero-cost simulated engine (the model's vocabulary only)" });
        root.SetAction((result, _) => WorkerServer.RunAsync(Settings(result)));
        root.Subcommands.Add(DemoModelCommand());
        root.Subcommands.Add(GenerateCommand());
        root.Subcommands.Add(InfoCommand());
        return root;
    }

    /// <summary>The configuration values of the serving options given (later occurrences win, as configuration does).</summary>
    private static Dictionary<string, string?> Settings(ParseResult result)
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var option in result.RootCommandResult.Command.Options)
        {
            if (result.GetResult(option) is not { Implicit: false } given)
            {
                continue;
            }

            if (option.Name == SimulateFlag)
            {
                settings[SimulateKey] = given.GetValueOrDefault<bool>() ? "true" : "false";
            }
            else if (ServeOptionKeys.TryGetValue(option.Name, out var key))
            {
                settings[key] = given.GetValueOrDefault<string>();
            }
        }

        return settings;
    }

    private static Command DemoModelCommand()
    {
        var output = new Argument<string>("out.gguf") { Description = "where to write the model" };
        var arch = EnumOption("--arch", DemoArchitecture.Qwen35, "architecture");
        var size = EnumOption("--size", DemoModelSize.Tiny, "size");
        var quant = new Option<DemoQuantization?>("--quant")
        {
            Description = "weight format (default f16 for tiny, q8_0 for small)",
            HelpName = string.Join('|', EnumNames<DemoQuantization>()),
            CustomParser = r => ParseEnum<DemoQuantization>(r),
        };
        var seed = IntOption("--seed", 42, "seed of the random weights");
        var tokenizer = new Option<string?>("--tokenizer")
        {
            Description = "the folder scripts/fetch-tokenizer.sh prints (the real Qwen3.5 vocabulary and chat template); without it the model " +
                "gets a small byte-level tokenizer whose prompts are ~3.5x longer than on the real model",
        };
        var nativeDir = NativeDirOption();
        var command = new Command("demo-model", "Writes a random-weight GGUF of a real llama.cpp architecture (for tests and benchmarks).")
        {
            output, arch, size, quant, seed, tokenizer, nativeDir,
        };
        command.SetAction(result =>
        {
            LlamaBackend.Initialize(result.GetValue(nativeDir));
            var info = DemoModelBuilder.Build(new DemoModelOptions(result.GetValue(output)!, result.GetValue(arch), result.GetValue(size))
            {
                Quantization = result.GetValue(quant),
                Seed = result.GetValue(seed),
                Tokenizer = result.GetValue(tokenizer) is { } folder ? QwenTokenizerFiles.InDirectory(folder) : null,
            });
            Console.WriteLine(
                $"wrote {info.Path}: {info.Architecture}, {info.Parameters:N0} parameters, {info.FileBytes:N0} bytes ({info.Description}) in {info.Elapsed.TotalSeconds:F1} s");
            return 0;
        });
        return command;
    }

    private static Command GenerateCommand()
    {
        var model = new Option<string>("--model") { Description = "the GGUF file", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "the user message", DefaultValueFactory = _ => "Write a haiku about a fleet of GPUs." };
        var maxTokens = IntOption("--max-tokens", 48, "tokens per stream at most");
        var streams = IntOption("--streams", 1, "generations at once (the first is printed)");
        var slots = IntOption("--slots", 0, "sequence slots; default: one per stream");
        var contextSize = IntOption("--ctx-size", 0, "context size; default: the model's");
        var gpuLayers = IntOption("--gpu-layers", 0, "layers offloaded to the GPU (-1 = all)");
        var temperature = new Option<float>("--temperature")
        {
            Description = "sampling temperature",
            DefaultValueFactory = _ => 0.8f,
            CustomParser = r => float.TryParse(r.Tokens[0].Value, CultureInfo.InvariantCulture, out var t) ? t : Error<float>(r, "a number"),
        };
        var seed = IntOption("--seed", 1, "sampling seed of the first stream (the others count up from it)");
        var nativeDir = NativeDirOption();
        var command = new Command("generate", "Loads a model, starts the engine and streams generations to the terminal.")
        {
            model, prompt, maxTokens, streams, slots, contextSize, gpuLayers, temperature, seed, nativeDir,
        };
        command.SetAction((result, _) => WorkerTools.GenerateAsync(new GenerateSettings(
            result.GetValue(model)!, result.GetValue(prompt)!, result.GetValue(maxTokens), result.GetValue(streams), result.GetValue(slots),
            result.GetValue(contextSize), result.GetValue(gpuLayers), result.GetValue(temperature), result.GetValue(seed), result.GetValue(nativeDir))));
        return command;
    }

    private static Command InfoCommand()
    {
        var nativeDir = NativeDirOption();
        var command = new Command("info", "Shows the llama.cpp libraries, backends and devices the worker would use.") { nativeDir };
        command.SetAction(result => WorkerTools.Info(result.GetValue(nativeDir)));
        return command;
    }

    private static Option<string?> NativeDirOption() =>
        new("--native-dir") { Description = "folder of the llama.cpp libraries; default: llama-native/ beside the worker" };

    private static Option<int> IntOption(string name, int fallback, string description) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => fallback,
        CustomParser = r => int.TryParse(r.Tokens[0].Value, CultureInfo.InvariantCulture, out var n) ? n : Error<int>(r, "an integer"),
    };

    private static Option<T> EnumOption<T>(string name, T fallback, string description)
        where T : struct, Enum => new(name)
    {
        Description = description,
        HelpName = string.Join('|', EnumNames<T>()),
        DefaultValueFactory = _ => fallback,
        CustomParser = r => ParseEnum<T>(r) ?? default,
    };

    /// <summary>Enum names as written on the command line: lower case, <c>-</c> or <c>_</c> between words.</summary>
    private static T? ParseEnum<T>(ArgumentResult result)
        where T : struct, Enum
    {
        var value = result.Tokens[0].Value;
        return Enum.TryParse<T>(value.Replace("-", "_", StringComparison.Ordinal), ignoreCase: true, out var parsed) && Enum.IsDefined(parsed)
            ? parsed
            : Error<T?>(result, $"one of {string.Join(", ", EnumNames<T>())}");
    }

    private static IEnumerable<string> EnumNames<T>()
        where T : struct, Enum => Enum.GetNames<T>().Select(n => n.ToLowerInvariant());

    private static T? Error<T>(ArgumentResult result, string expected)
    {
        var option = result.Parent is OptionResult owner ? owner.Option.Name : result.Argument.Name;
        result.AddError($"{option} must be {expected}, not '{result.Tokens[0].Value}'.");
        return default;
    }

    /// <summary>Every problem with the command line, in words: unknown options, stray arguments, missing or bad values.</summary>
    private static List<string> Problems(ParseResult result)
    {
        var problems = new List<string>();
        var unmatched = result.UnmatchedTokens;
        for (var i = 0; i < unmatched.Count; i++)
        {
            var name = unmatched[i].Split('=', 2)[0];
            if (name.StartsWith('-'))
            {
                problems.Add($"Unknown option '{name}'.");
                // An unknown option's value is not a second problem.
                i += name == unmatched[i] && i + 1 < unmatched.Count && !unmatched[i + 1].StartsWith('-') ? 1 : 0;
            }
            else
            {
                problems.Add($"Unexpected argument '{unmatched[i]}' (options are --name value; commands are " +
                    $"{string.Join(", ", result.RootCommandResult.Command.Subcommands.Select(c => c.Name))}).");
            }
        }

        foreach (var error in result.Errors)
        {
            if (error.SymbolResult is CommandResult && unmatched.Any(t => error.Message.Contains($"'{t}'", StringComparison.Ordinal)))
            {
                continue; // an unmatched token, said above in the worker's words
            }

            var option = error.SymbolResult switch
            {
                OptionResult o => o,
                ArgumentResult { Parent: OptionResult o } => o,
                _ => null,
            };
            problems.Add(option is { Tokens.Count: 0, Implicit: false } && option.Option.Arity.MinimumNumberOfValues > 0
                ? $"Option {option.Option.Name} needs a value."
                : error.Message);
        }

        return problems;
    }

    private static string OptionList(Command command) =>
        string.Join(' ', command.Options.Where(o => !o.Hidden && o is not System.CommandLine.Help.HelpOption and not VersionOption)
            .Select(o => o.Name).Order(StringComparer.Ordinal));
}
