namespace GpuFleet.Worker.Engine;

/// <summary>Prefill and decode tokens per second over a sliding window of recent decode steps.</summary>
internal sealed class ThroughputMeter
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _window;
    private readonly Queue<(long Timestamp, int Prefill, int Decode)> _steps = new();
    private readonly Lock _gate = new();
    private long _prefill;
    private long _decode;

    public ThroughputMeter(TimeProvider time, TimeSpan window)
    {
        _time = time;
        _window = window;
    }

    public void Record(int prefillTokens, int decodeTokens)
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            _steps.Enqueue((now, prefillTokens, decodeTokens));
            _prefill += prefillTokens;
            _decode += decodeTokens;
            Trim(now);
        }
    }

    public (double PrefillPerSecond, double DecodePerSecond) Rates()
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            Trim(now);
            if (_steps.Count == 0)
            {
                return (0, 0);
            }

            // Over the whole window, so that a lone burst decays instead of reading as a peak forever.
            var seconds = _window.TotalSeconds;
            return (_prefill / seconds, _decode / seconds);
        }
    }

    private void Trim(long now)
    {
        while (_steps.Count > 0 && _time.GetElapsedTime(_steps.Peek().Timestamp, now) > _window)
        {
            var (_, prefill, decode) = _steps.Dequeue();
            _prefill -= prefill;
            _decode -= decode;
        }
    }
}
