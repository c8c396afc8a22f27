using System.Globalization;

namespace GpuFleet.Contracts.Redis;

// One command waiting for its reply. It stays in the connection's FIFO even after its caller gave up (timeout,
// cancellation), because the server still answers it: the reader dequeues it, and TrySetResult is then a no-op
// that discards the late reply, keeping every later reply matched to its own caller.
internal sealed class PendingReply : TaskCompletionSource<RedisResult>
{
    private ITimer? _timer;
    private CancellationTokenRegistration _cancellation;
    private TimeSpan _timeout;

    public PendingReply(in RedisCommand command)
        : base(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        Command = command;
    }

    public RedisCommand Command { get; }

    public void Start(TimeProvider time, TimeSpan timeout, CancellationToken cancellationToken)
    {
        _timeout = timeout;
        if (cancellationToken.CanBeCanceled)
        {
            _cancellation = cancellationToken.UnsafeRegister(static (state, token) => ((PendingReply)state!).Cancel(token), this);
        }

        _timer = time.CreateTimer(static state => ((PendingReply)state!).TimeOut(), this, timeout, Timeout.InfiniteTimeSpan);
        if (Task.IsCompleted)
        {
            // Cancelled before the timer existed: Cleanup ran without it.
            _timer.Dispose();
        }
    }

    public void Complete(in RedisResult result)
    {
        if (TrySetResult(result))
        {
            Cleanup();
        }
    }

    public void Fail(Exception error)
    {
        if (TrySetException(error))
        {
            Cleanup();
        }
    }

    private void Cancel(CancellationToken token)
    {
        if (TrySetCanceled(token))
        {
            Cleanup();
        }
    }

    private void TimeOut() => Fail(new RedisTimeoutException(string.Create(CultureInfo.InvariantCulture,
        $"Redis {Command.Name} got no reply within {_timeout.TotalMilliseconds} ms.")));

    private void Cleanup()
    {
        _timer?.Dispose();
        // Unregister, not Dispose: Dispose would wait for a running callback, and Cleanup may run inside it.
        _cancellation.Unregister();
    }
}
