namespace GpuFleet.Worker.Engine;

/// <summary>
/// The bounded wait line between request handlers and the scheduler thread. It bounds the work accepted
/// (running + waiting) so that an overloaded worker refuses at once instead of letting callers wait
/// without limit, lets the scheduler drop cancelled requests before they reach a slot, and wakes the
/// idle scheduler when work or a cancellation arrives.
/// </summary>
internal sealed class AdmissionQueue(int slots, int capacity) : IDisposable
{
    private readonly LinkedList<PendingRequest> _waiting = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Lock _gate = new();
    private int _accepted; // waiting + running
    private long _waitingPromptTokens;
    private bool _closed;

    public int Capacity => capacity;

    public int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Prompt tokens of the waiting requests (none of them is prefilled yet).</summary>
    public long WaitingPromptTokens
    {
        get
        {
            lock (_gate)
            {
                return _waitingPromptTokens;
            }
        }
    }

    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closed;
            }
        }
    }

    /// <summary>Accepts a request unless the worker already holds slots + capacity requests or is closed.</summary>
    public bool TryEnqueue(PendingRequest request, out RejectionReason reason)
    {
        lock (_gate)
        {
            if (_closed)
            {
                reason = RejectionReason.ShuttingDown;
                return false;
            }

            if (_accepted >= slots + capacity)
            {
                reason = RejectionReason.Overloaded;
                return false;
            }

            _accepted++;
            _waiting.AddLast(request);
            _waitingPromptTokens += request.Prompt.Length;
        }

        reason = default;
        _wake.Set();
        return true;
    }

    /// <summary>
    /// The oldest waiting request that <paramref name="passOver"/> does not hold back (those keep their places), or null;
    /// <paramref name="admit"/> may decline it, and it then stays first in line.
    /// </summary>
    public PendingRequest? TryDequeue(Func<PendingRequest, bool>? admit = null, Func<PendingRequest, bool>? passOver = null)
    {
        lock (_gate)
        {
            var first = _waiting.First;
            while (first is not null && passOver is not null && passOver(first.Value))
            {
                first = first.Next;
            }

            if (first is null || (admit is not null && !admit(first.Value)))
            {
                return null;
            }

            _waiting.Remove(first);
            _waitingPromptTokens -= first.Value.Prompt.Length;
            return first.Value;
        }
    }

    /// <summary>Removes and returns waiting requests whose caller has cancelled.</summary>
    public List<PendingRequest> RemoveCancelled()
    {
        var removed = new List<PendingRequest>();
        lock (_gate)
        {
            for (var node = _waiting.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Cancellation.IsCancellationRequested)
                {
                    _waiting.Remove(node);
                    _waitingPromptTokens -= node.Value.Prompt.Length;
                    removed.Add(node.Value);
                }

                node = next;
            }
        }

        return removed;
    }

    /// <summary>A request left the engine (finished, failed or cancelled): frees its admission.</summary>
    public void Release()
    {
        lock (_gate)
        {
            _accepted--;
        }
    }

    /// <summary>Refuses new requests from now on; waiting ones are still served.</summary>
    public void Close()
    {
        lock (_gate)
        {
            _closed = true;
        }

        _wake.Set();
    }

    public void Wake() => _wake.Set();

    /// <summary>Blocks the scheduler until a request waits, the queue closes, or <paramref name="abort"/> fires.</summary>
    public void WaitForWork(CancellationToken abort)
    {
        lock (_gate)
        {
            if (_waiting.Count > 0 || _closed)
            {
                return;
            }

            _wake.Reset();
        }

        try
        {
            _wake.Wait(abort);
        }
        catch (OperationCanceledException)
        {
            // Aborting: the caller checks its own state.
        }
    }

    public void Dispose() => _wake.Dispose();
}
