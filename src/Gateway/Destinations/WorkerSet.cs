using Microsoft.Extensions.Primitives;

namespace GpuFleet.Gateway.Destinations;

/// <summary>
/// One version of the directory's worker set, ordered by destination. <see cref="ChangeToken"/> fires once a newer
/// version replaces it, which is exactly what YARP's <c>IProxyConfig.ChangeToken</c> wants.
/// </summary>
internal sealed class WorkerSet
{
    private readonly CancellationToken _superseded;

    internal WorkerSet(long version, IReadOnlyList<WorkerEndpoint> workers, CancellationToken superseded)
    {
        Version = version;
        Workers = workers;
        _superseded = superseded;
        ChangeToken = new CancellationChangeToken(superseded);
    }

    /// <summary>Starts at 0 and grows by one with every change of the set.</summary>
    public long Version { get; }

    public IReadOnlyList<WorkerEndpoint> Workers { get; }

    /// <summary>Fires when a newer set replaces this one.</summary>
    public IChangeToken ChangeToken { get; }

    public bool IsSuperseded => _superseded.IsCancellationRequested;

    /// <summary>Completes when a newer set replaces this one; throws <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires first.</summary>
    public async Task WaitForNextAsync(CancellationToken cancellationToken)
    {
        if (_superseded.IsCancellationRequested)
        {
            return;
        }

        var next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var registration = _superseded.Register(() => next.TrySetResult());
        await next.Task.WaitAsync(cancellationToken);
    }
}
