using System.Runtime.InteropServices;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Bench;

/// <summary>
/// The start-up every long-running benchmark shares: its options parsed (usage and exit code 2 on a bad command line),
/// Ctrl-C, SIGTERM and SIGHUP turned into cancellation (so the benchmark stops its processes and removes its files instead
/// of ending with them still there), a temporary folder, and the expected failures turned into a message and exit code 1.
/// </summary>
internal sealed class BenchmarkRun
{
    private const string UsagePrefix = "Usage: dotnet run --project bench/GpuFleet.Bench -c Release -- ";

    private readonly List<IAsyncDisposable> _owned = [];

    private BenchmarkRun(string name, string temp, CancellationToken cancel)
    {
        Name = name;
        Temp = temp;
        Cancel = cancel;
    }

    /// <summary>The command's name, the prefix of its messages.</summary>
    public string Name { get; }

    /// <summary>A temporary folder of this run, removed at its end.</summary>
    public string Temp { get; }

    /// <summary>Cancelled by Ctrl-C, SIGTERM or SIGHUP.</summary>
    public CancellationToken Cancel { get; }

    /// <summary>
    /// Parses <paramref name="args"/> with <paramref name="parse"/> and runs <paramref name="body"/>; returns its exit code,
    /// 2 for a bad command line (0 for --help), 130 when cancelled by a signal, 1 after an expected failure
    /// (<see cref="InvalidOperationException"/>, <see cref="TimeoutException"/>, <see cref="HttpRequestException"/>, <see cref="IOException"/>).
    /// </summary>
    /// <param name="cancelled">What the run says when a signal stopped it (after <c>name: </c>).</param>
    public static async Task<int> RunAsync<TOptions>(string name, string usage, string[] args, Func<string[], TOptions> parse,
        Func<TOptions, BenchmarkRun, Task<int>> body, string cancelled)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(body);
        if (args is ["--help"] or ["-h"])
        {
            Console.WriteLine(UsagePrefix + usage);
            return 0;
        }

        TOptions options;
        try
        {
            options = parse(args);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"{ex.Message}\n{UsagePrefix}{usage}");
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        var signals = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }.Select(signal => PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            cancel.Cancel();
        })).ToList();
        var run = new BenchmarkRun(name, Directory.CreateTempSubdirectory($"gpufleet-bench-{name}-").FullName, cancel.Token);
        try
        {
            return await body(options, run);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Console.Error.WriteLine($"{name}: {cancelled}");
            return 130;
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or HttpRequestException or IOException)
        {
            Console.Error.WriteLine($"{name}: failed: {ex.Message}");
            return 1;
        }
        finally
        {
            signals.ForEach(registration => registration.Dispose());
            // What the run started stops before its files go (nginx, for one, keeps its configuration in the folder).
            for (var i = run._owned.Count - 1; i >= 0; i--)
            {
                await run._owned[i].DisposeAsync();
            }

            Directory.Delete(run.Temp, recursive: true);
        }
    }

    /// <summary>Disposes <paramref name="resource"/> at the end of the run, after the messages of a cancellation or failure.</summary>
    public T Own<T>(T resource) where T : IAsyncDisposable
    {
        _owned.Add(resource);
        return resource;
    }

    /// <summary>
    /// A tiny qwen35 model with the real Qwen3.5/3.6 vocabulary and chat template, built in <see cref="Temp"/>: simulated
    /// workers read only its vocabulary.
    /// </summary>
    public string BuildSimulationModel()
    {
        LlamaBackend.Initialize();
        var model = Path.Combine(Temp, "sim-qwen35.gguf");
        DemoModelBuilder.Build(new DemoModelOptions(model, DemoArchitecture.Qwen35, DemoModelSize.Tiny) { Tokenizer = TestModels.QwenTokenizer });
        return model;
    }
}
