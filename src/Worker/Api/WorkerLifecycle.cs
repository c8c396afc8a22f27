using GpuFleet.Worker.Engine;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace GpuFleet.Worker.Api;

/// <summary>
/// Graceful drain. On SIGTERM the host calls <see cref="StoppingAsync"/> before any service stops (so
/// Kestrel still answers): readiness turns false and new requests get 503 at once, while in-flight ones
/// finish within <see cref="WorkerOptions.DrainTimeoutSeconds"/>; those still running then are interrupted
/// (they end with an error the client can see); then the host stops and the process exits 0.
/// </summary>
internal sealed class WorkerLifecycle(IOptions<WorkerOptions> options, TimeProvider time, HealthServiceImpl health, EngineHost engine, ILogger<WorkerLifecycle> logger)
    : IHostedLifecycleService
{
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private volatile bool _draining;

    public bool Draining => _draining;

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Counts one API request for the drain; dispose when its response is complete.</summary>
    public IDisposable Track()
    {
        Interlocked.Increment(ref _inFlight);
        return new Ticket(this);
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        // Pushed to Watch callers at once rather than at the health publisher's next run; the readiness health
        // check (which the publisher and Check evaluate) answers NOT_SERVING from now on too.
        health.SetStatus(string.Empty, ServingStatus.NotServing);
        health.SetStatus(Api.Grpc.WorkerGrpcEndpoints.InferenceService, ServingStatus.NotServing);
        var grace = TimeSpan.FromSeconds(options.Value.DrainTimeoutSeconds);
        WorkerLifecycleLog.Draining(logger, InFlight, grace.TotalSeconds);
        if (InFlight == 0)
        {
            return;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(grace);
        try
        {
            await _idle.Task.WaitAsync(Timeout.InfiniteTimeSpan, time, timeout.Token);
            WorkerLifecycleLog.Drained(logger);
        }
        catch (OperationCanceledException)
        {
            WorkerLifecycleLog.DrainTimedOut(logger, InFlight);
            // Stop the engine now, while Kestrel still serves: each cut stream ends with an error event
            // (and a non-streamed request with 503) instead of a connection reset at server shutdown.
            if (engine.Ready)
            {
                await engine.Engine.StopAsync(new CancellationToken(canceled: true));
            }
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Every hosted service started, so the engine runs: gRPC health watchers see SERVING now.</summary>
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        if (engine.Ready && !_draining)
        {
            health.SetStatus(string.Empty, ServingStatus.Serving);
            health.SetStatus(Api.Grpc.WorkerGrpcEndpoints.InferenceService, ServingStatus.Serving);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Leave()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _draining)
        {
            _idle.TrySetResult();
        }
    }

    private sealed class Ticket(WorkerLifecycle owner) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Leave();
            }
        }
    }
}

internal static partial class WorkerLifecycleLog
{
    [LoggerMessage(EventId = 10, EventName = "Draining", Level = LogLevel.Information,
        Message = "Draining: readiness is false and new requests get 503; waiting up to {GraceSeconds} s for {InFlight} in-flight request(s)")]
    public static partial void Draining(ILogger logger, int inFlight, double graceSeconds);

    [LoggerMessage(EventId = 11, EventName = "Drained", Level = LogLevel.Information, Message = "Drained: every in-flight request finished")]
    public static partial void Drained(ILogger logger);

    [LoggerMessage(EventId = 12, EventName = "DrainTimedOut", Level = LogLevel.Warning,
        Message = "Drain grace ran out with {InFlight} request(s) still running; they are interrupted")]
    public static partial void DrainTimedOut(ILogger logger, int inFlight);
}
