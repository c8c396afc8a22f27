using GpuFleet.Contracts.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace GpuFleet.Worker.Api.Grpc;

/// <summary>
/// <c>gpufleet.v1.WorkerStatusService/Watch</c>: the worker's status for gateways, pushed when it changes
/// (checked every 100 ms) and at least every 2 s as a heartbeat, so a silent stream means a stale worker.
/// </summary>
internal sealed class WorkerStatusGrpcService(WorkerApi api) : WorkerStatusService.WorkerStatusServiceBase
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(2);

    public override async Task Watch(WatchStatusRequest request, IServerStreamWriter<WorkerStatus> writer, ServerCallContext context)
    {
        WorkerStatus? lastSentComparable = null;
        var lastSent = api.Time.GetTimestamp();
        while (!context.CancellationToken.IsCancellationRequested)
        {
            var current = Snapshot();
            // Rates drift continuously; compare without them so a change means real work moved.
            var comparable = Comparable(current);
            if (lastSentComparable is null || !comparable.Equals(lastSentComparable) || api.Time.GetElapsedTime(lastSent) >= Heartbeat)
            {
                current.ObservedAt = Timestamp.FromDateTimeOffset(api.Time.GetUtcNow());
                await writer.WriteAsync(current, context.CancellationToken);
                lastSentComparable = comparable;
                lastSent = api.Time.GetTimestamp();
            }

            await Task.Delay(Poll, api.Time, context.CancellationToken);
        }
    }

    internal WorkerStatus Snapshot()
    {
        var options = api.Options;
        var engine = api.TryGetStatus();
        var status = new WorkerStatus
        {
            Name = options.Name,
            Model = api.ModelId,
            HttpAddress = $"http://{options.Host}:{options.HttpPort}",
            GrpcAddress = $"http://{options.Host}:{options.GrpcPort}",
            Draining = api.Lifecycle.Draining,
            Ready = engine is not null && !api.Lifecycle.Draining,
            Simulated = api.Simulated,
        };
        if (engine is { } s)
        {
            status.Engine = new Contracts.V1.EngineStatus
            {
                QueueDepth = (uint)s.QueueDepth,
                QueueCapacity = (uint)s.QueueCapacity,
                RunningSlots = (uint)s.RunningSlots,
                FreeSlots = (uint)s.FreeSlots,
                TotalSlots = (uint)s.TotalSlots,
                ContextPerSlot = (uint)s.ContextPerRequest,
                KvTokensUsed = (ulong)s.KvTokensUsed,
                KvTokensTotal = (ulong)s.KvTokensTotal,
                ReservedKvTokens = (ulong)s.ReservedKvTokens,
                KvBytesUsed = (ulong)s.KvBytesUsed,
                KvBytesTotal = (ulong)s.KvBytesTotal,
                HostCacheEntries = (uint)s.HostCacheEntries,
                HostCacheBytes = (ulong)s.HostCacheBytes,
                HostCacheCapacityBytes = (ulong)s.HostCacheCapacityBytes,
                HostCacheEvictions = (ulong)s.HostCacheEvictions,
                PrefillTokensPerSecond = s.PrefillTokensPerSecond,
                DecodeTokensPerSecond = s.DecodeTokensPerSecond,
                PromptTokensTotal = (ulong)s.PromptTokensTotal,
                ReusedPromptTokensTotal = (ulong)s.ReusedPromptTokensTotal,
                GeneratedTokensTotal = (ulong)s.GeneratedTokensTotal,
                RequestsCompleted = (ulong)s.RequestsCompleted,
                RequestsFailed = (ulong)s.RequestsFailed,
                PendingPrefillTokens = (ulong)s.PendingPrefillTokens,
                HoldingsVersion = (ulong)s.HoldingsVersion,
                RequestsRejected = (ulong)s.RequestsRejected,
            };
            status.Engine.HeldPrefixBlocks.AddRange(s.HeldPrefixBlocks);
            status.Engine.PrefillingPrefixBlocks.AddRange(s.PrefillingPrefixBlocks);
        }

        return status;
    }

    private static WorkerStatus Comparable(WorkerStatus status)
    {
        var copy = status.Clone();
        copy.ObservedAt = null;
        if (copy.Engine is { } engine)
        {
            engine.PrefillTokensPerSecond = 0;
            engine.DecodeTokensPerSecond = 0;
        }

        return copy;
    }
}
