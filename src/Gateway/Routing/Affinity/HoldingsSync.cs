using GpuFleet.Gateway.Load;
using Microsoft.Extensions.Hosting;

namespace GpuFleet.Gateway.Routing.Affinity;

/// <summary>
/// Corrects the affinity index from what workers report they hold (evictions included): once a second, every worker
/// whose holdings changed since the last pass has its reported blocks applied.
/// </summary>
internal sealed class HoldingsSync(WorkerLoadBoard board, AffinityIndex affinity, TimeProvider time) : BackgroundService
{
    private readonly Dictionary<string, ulong> _applied = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                foreach (var load in board.All)
                {
                    if (load.Status is not { Engine: { } engine } status || string.IsNullOrEmpty(status.Model)
                        || (_applied.TryGetValue(load.Destination, out var version) && version == engine.HoldingsVersion))
                    {
                        continue;
                    }

                    await affinity.ApplyHoldingsAsync(status.Model, load.Destination, [.. engine.HeldPrefixBlocks], stoppingToken);
                    _applied[load.Destination] = engine.HoldingsVersion;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
