using System.Threading.Channels;
using GpuFleet.Contracts.Health;
using ServingStatus = GpuFleet.Contracts.Health.HealthCheckResponse.Types.ServingStatus;

namespace GpuFleet.Contracts.Grpc;

/// <summary>
/// The standard grpc.health.v1.Health service: a table of serving statuses by service name ("" is the whole
/// server, SERVING from the start), answered by Check and streamed to Watch callers as it changes.
/// </summary>
public sealed class GrpcHealthService
{
    /// <summary>The full method name of Check.</summary>
    public const string CheckMethod = "/grpc.health.v1.Health/Check";

    /// <summary>The full method name of Watch.</summary>
    public const string WatchMethod = "/grpc.health.v1.Health/Watch";

    private readonly Lock _lock = new();
    private readonly Dictionary<string, ServingStatus> _statuses = new(StringComparer.Ordinal) { [string.Empty] = ServingStatus.Serving };
    private readonly List<(string Service, Action<ServingStatus> Notify)> _watchers = [];

    /// <summary>Sets the status of <paramref name="service"/> and tells its watchers.</summary>
    public void SetStatus(string service, ServingStatus status)
    {
        ArgumentNullException.ThrowIfNull(service);
        lock (_lock)
        {
            _statuses[service] = status;
            NotifyLocked(service, status);
        }
    }

    /// <summary>Forgets <paramref name="service"/>: Check answers NOT_FOUND, watchers see SERVICE_UNKNOWN.</summary>
    public void ClearStatus(string service)
    {
        ArgumentNullException.ThrowIfNull(service);
        lock (_lock)
        {
            if (_statuses.Remove(service))
            {
                NotifyLocked(service, ServingStatus.ServiceUnknown);
            }
        }
    }

    /// <summary>The status of <paramref name="service"/>, or null when it is unknown.</summary>
    public ServingStatus? GetStatus(string service)
    {
        lock (_lock)
        {
            return _statuses.TryGetValue(service, out var status) ? status : null;
        }
    }

    internal Task<HealthCheckResponse> CheckAsync(HealthCheckRequest request, GrpcServerCallContext context) =>
        GetStatus(request.Service) is { } status
            ? Task.FromResult(new HealthCheckResponse { Status = status })
            : throw new GrpcException(GrpcStatusCode.NotFound, "Unknown service.");

    internal async Task WatchAsync(HealthCheckRequest request, IGrpcStreamWriter<HealthCheckResponse> writer, GrpcServerCallContext context)
    {
        // Only the latest status matters to a watcher, so a slow one skips intermediate states instead of queueing them.
        var changes = Channel.CreateBounded<ServingStatus>(new BoundedChannelOptions(1)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
            SingleWriter = false,
        });
        (string, Action<ServingStatus>) watcher = (request.Service, status => changes.Writer.TryWrite(status));
        lock (_lock)
        {
            changes.Writer.TryWrite(_statuses.TryGetValue(request.Service, out var current) ? current : ServingStatus.ServiceUnknown);
            _watchers.Add(watcher);
        }

        try
        {
            ServingStatus? last = null;
            await foreach (var status in changes.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                if (status != last)
                {
                    await writer.WriteAsync(new HealthCheckResponse { Status = status }, context.CancellationToken).ConfigureAwait(false);
                    last = status;
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _watchers.Remove(watcher);
            }
        }
    }

    private void NotifyLocked(string service, ServingStatus status)
    {
        foreach (var (watched, notify) in _watchers)
        {
            if (string.Equals(watched, service, StringComparison.Ordinal))
            {
                notify(status);
            }
        }
    }
}
