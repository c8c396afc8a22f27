using System.Globalization;
using System.Text.Json;
using GpuFleet.Testing;
using GpuFleet.Worker.Engine.CostModel;

namespace GpuFleet.Bench.Routing;

/// <summary>
/// The simulated fleet: worker processes on the cost-model engine (the real scheduler; <c>--simulate-profile</c>) at one
/// shared speed-up, and one real gateway in front per policy under test. Every process binds 127.0.0.1 only.
/// </summary>
internal sealed class SimulatedFleet : IAsyncDisposable
{
    private readonly List<WorkerProcess> _workers;

    private SimulatedFleet(List<WorkerProcess> workers) => _workers = workers;

    public IReadOnlyList<WorkerProcess> Workers => _workers;

    /// <summary>Starts <paramref name="count"/> workers, a few at a time so that a 2-core machine starts them all within the timeout.</summary>
    public static async Task<SimulatedFleet> StartAsync(string modelPath, int count, int slots, double speedup, string profile = CostModelProfiles.Rtx3090Qwen36)
    {
        var workers = new List<WorkerProcess>();
        var fleet = new SimulatedFleet(workers);
        try
        {
            for (var started = 0; started < count; started += 4)
            {
                var batch = await Task.WhenAll(Enumerable.Range(started, Math.Min(4, count - started)).Select(i => WorkerProcess.StartAsync(modelPath,
                    "--simulate-profile", profile, "--simulate-speedup", speedup.ToString(CultureInfo.InvariantCulture),
                    // Answers end at max_tokens, as the workload sets them, never earlier.
                    "--simulate-tokens", "1000000",
                    "--slots", slots.ToString(CultureInfo.InvariantCulture), "--queue", "512",
                    // Host RAM for snapshots: a GPU node with 64 GB keeps half for them (the bytes are modelled, not allocated).
                    "--host-cache-bytes", (32L << 30).ToString(CultureInfo.InvariantCulture),
                    "--enable-thinking", "false", "--name", $"sim-{i:D2}")));
                workers.AddRange(batch);
            }

            return fleet;
        }
        catch
        {
            await fleet.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts a gateway in front of every worker with <paramref name="policy"/> (and <paramref name="extraArgs"/>), and waits until it sees them all available.</summary>
    public async Task<DotnetServerProcess> StartGatewayAsync(string policy, int port, HttpClient http, params string[] extraArgs)
    {
        ArgumentNullException.ThrowIfNull(http);
        List<string> args = ["--http-port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", "0", "--routing-policy", policy, .. extraArgs];
        foreach (var worker in _workers)
        {
            args.Add("--worker");
            args.Add(worker.BaseAddress.ToString().TrimEnd('/'));
        }

        var gateway = await DotnetServerProcess.StartAsync("gateway", "GpuFleet.Gateway.dll", args, new Uri($"http://127.0.0.1:{port}/healthz"));
        try
        {
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/workers")));
                return json.RootElement.GetArrayLength() == _workers.Count && json.RootElement.EnumerateArray().All(w => w.GetProperty("available").GetBoolean());
            }, () => $"the gateway never saw all {_workers.Count} workers available\n{gateway.Output}");
            return gateway;
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            await worker.DisposeAsync();
        }
    }
}
