namespace GpuFleet.Contracts.Redis;

/// <summary>Where a <see cref="RedisConnection"/> stands; it changes only on real transitions, so each change is worth one log line.</summary>
public enum RedisConnectionState
{
    /// <summary>The first connect attempt has not finished yet.</summary>
    Connecting,

    /// <summary>Commands are sent.</summary>
    Connected,

    /// <summary>Down; commands fail at once while reconnects are retried in the background with backoff.</summary>
    Disconnected,
}

/// <summary>A change of <see cref="RedisConnection.State"/>.</summary>
public sealed class RedisConnectionStateChangedEventArgs(RedisConnectionState previous, RedisConnectionState current, Exception? error) : EventArgs
{
    public RedisConnectionState Previous { get; } = previous;

    public RedisConnectionState Current { get; } = current;

    /// <summary>Why the connection went down or could not be made; null on connect.</summary>
    public Exception? Error { get; } = error;
}
