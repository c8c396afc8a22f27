using System.Text.Json;
using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Destinations;

/// <summary>
/// Real workers (w0, w1, ...) on a tiny model behind one real gateway, started once and shared by the tests of a class
/// (<c>IClassFixture</c>): starting them is most of such a test's time. A test that kills, drains or reconfigures a
/// worker starts a fleet of its own instead; one that loads the fleet leaves it idle (<see cref="WaitUntilIdleAsync"/>).
/// </summary>
/// <param name="model">The model's name, which is also its id in the API.</param>
/// <param name="workerArgs">Every worker's options besides its name.</param>
public abstract class GatewayFleet(string model, DemoArchitecture architecture, int workers, params string[] workerArgs) : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpufleet-fleet-").FullName;
    private readonly List<WorkerProcess> _workers = [];

    public string Model => model;

    public IReadOnlyList<WorkerProcess> Workers => _workers;

    internal GatewayProcess Gateway { get; private set; } = null!;

    /// <summary>The real Qwen3.5 tokenizer and chat template instead of the small byte-level one.</summary>
    protected bool QwenTokenizer { get; init; }

    public async Task InitializeAsync()
    {
        LlamaBackend.Initialize();
        var path = Path.Combine(_directory, model + ".gguf");
        DemoModelBuilder.Build(new DemoModelOptions(path, architecture, DemoModelSize.Tiny) { Tokenizer = QwenTokenizer ? TestModels.QwenTokenizer : null });
        _workers.AddRange(await Task.WhenAll(Enumerable.Range(0, workers).Select(i => WorkerProcess.StartAsync(path, ["--name", $"w{i}", .. workerArgs]))));
        Gateway = await GatewayProcess.StartAsync([.. _workers.SelectMany(w => new[] { "--worker", w.BaseAddress.ToString().TrimEnd('/') })]);
        using var http = new HttpClient { Timeout = TestTimeouts.Default };
        await Gateway.WaitForWorkersAsync(http, views => views.Count(v => v.Available) == workers);
        await WarmUpAsync(http);
    }

    /// <summary>The worker's name (w0, w1, ...), as the gateway reports it in <c>x-gpufleet-worker</c>.</summary>
    public string NameOf(WorkerProcess worker) => $"w{_workers.IndexOf(worker)}";

    /// <summary>Waits until the gateway sees every worker available with nothing running or queued.</summary>
    public async Task WaitUntilIdleAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var view = "";
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            view = await http.GetStringAsync(new Uri(Gateway.BaseAddress, "/workers"));
            using var json = JsonDocument.Parse(view);
            return json.RootElement.EnumerateArray().Count(w => w.GetProperty("available").GetBoolean()
                && w.GetProperty("queue_depth").GetInt32() == 0 && w.GetProperty("running_slots").GetInt32() == 0) == workers;
        }, () => $"the fleet never became idle: {view}");
    }

    /// <summary>What the fleet serves before the first test (nothing by default).</summary>
    protected virtual Task WarmUpAsync(HttpClient http) => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }

        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}
