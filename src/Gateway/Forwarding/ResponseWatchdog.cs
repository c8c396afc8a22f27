using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;

namespace GpuFleet.Gateway.Forwarding;

/// <summary>
/// One timer for every forwarded response: four times a second it checks each open <see cref="ResponseWatch"/>
/// against its time-to-first-token or inter-token deadline (a per-request timer would cost more than the check).
/// </summary>
internal sealed class ResponseWatchdog(TimeProvider time) : BackgroundService
{
    public static readonly TimeSpan Resolution = TimeSpan.FromMilliseconds(250);
    private readonly ConcurrentDictionary<ResponseWatch, byte> _open = new();

    public void Add(ResponseWatch watch) => _open.TryAdd(watch, 0);

    public void Remove(ResponseWatch watch) => _open.TryRemove(watch, out _);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Resolution, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                foreach (var watch in _open.Keys)
                {
                    watch.Check();
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
