using System.Diagnostics;
using GpuFleet.Worker.Engine.Compute;
using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Engine.CostModel;

/// <summary>The modelled context: per-sequence token counts, the pool's capacity and the device timeline.</summary>
internal sealed class CostModelContext : IComputeContext
{
    private readonly CostModelProfile _profile;
    private readonly double _speedup;
    private readonly int[] _reply;
    private readonly int _endOfGeneration;
    private readonly int _replyTokens;
    private readonly int[] _tokens;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _busyUntil;

    public CostModelContext(CostModelProfile profile, double speedup, int contextSize, int sequences, int[] reply, int endOfGeneration, int replyTokens)
    {
        _profile = profile;
        _speedup = speedup;
        _reply = reply;
        _endOfGeneration = endOfGeneration;
        _replyTokens = replyTokens;
        _tokens = new int[sequences];
        ContextSize = contextSize;
        State = new StateFootprint(profile.StateBytesPerSequence, profile.StateBytesPerToken, profile.CanTrimTail);
    }

    public int ContextSize { get; }

    // One unified pool: a sequence may use all of it, as with llama.cpp's kv_unified.
    public int ContextPerSequence => ContextSize;

    public StateFootprint State { get; }

    /// <summary>Modelled device seconds spent so far (before the speed-up).</summary>
    public double ModelledSeconds { get; private set; }

    public ITokenBatch CreateBatch(int capacity) => new Batch(capacity);

    public DecodeResult Decode(ITokenBatch batch)
    {
        var b = (Batch)batch;
        var added = new int[_tokens.Length];
        for (var i = 0; i < b.Count; i++)
        {
            var sequence = b.Sequences[i];
            // llama.cpp rejects a position that does not continue the sequence; so does the model, to catch scheduler bugs.
            if (sequence < 0 || sequence >= _tokens.Length || b.Positions[i] != _tokens[sequence] + added[sequence])
            {
                return DecodeResult.InvalidBatch;
            }

            added[sequence]++;
        }

        if (_tokens.Sum() + b.Count > ContextSize)
        {
            return DecodeResult.NoKvSlot;
        }

        var decoding = 0;
        long decodeContext = 0;
        var prefills = new List<(int, int)>();
        for (var sequence = 0; sequence < _tokens.Length; sequence++)
        {
            if (added[sequence] == 1)
            {
                decoding++;
                decodeContext += _tokens[sequence];
            }
            else if (added[sequence] > 1)
            {
                prefills.Add((added[sequence], _tokens[sequence]));
            }

            _tokens[sequence] += added[sequence];
        }

        Spend(_profile.StepSeconds(decoding, decodeContext, prefills));
        return DecodeResult.Ok;
    }

    public int Sample(LlamaSampler sampler, int batchIndex, int generated) =>
        generated >= _replyTokens && _endOfGeneration >= 0 ? _endOfGeneration : _reply[generated % _reply.Length];

    public bool TryRemoveTail(int sequence, int from)
    {
        if (!_profile.CanTrimTail)
        {
            return false;
        }

        _tokens[sequence] = Math.Min(_tokens[sequence], from);
        return true;
    }

    public void ClearSequence(int sequence) => _tokens[sequence] = 0;

    public long GetSequenceStateSize(int sequence) => _profile.StateBytesPerSequence + (_tokens[sequence] * _profile.StateBytesPerToken);

    public SequenceState GetSequenceState(int sequence)
    {
        var bytes = GetSequenceStateSize(sequence);
        Spend(_profile.TransferSeconds(bytes));
        // Only the token count travels: it is all the model needs to restore the sequence's length.
        return new SequenceState(BitConverter.GetBytes(_tokens[sequence]), bytes);
    }

    public bool TrySetSequenceState(int sequence, SequenceState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Data.Length != sizeof(int))
        {
            return false;
        }

        Spend(_profile.TransferSeconds(state.Bytes));
        _tokens[sequence] = BitConverter.ToInt32(state.Data);
        return true;
    }

    public void Dispose() => _clock.Stop();

    private void Spend(double modelledSeconds)
    {
        if (modelledSeconds <= 0 || double.IsInfinity(_speedup))
        {
            return;
        }

        ModelledSeconds += modelledSeconds;
        var now = _clock.Elapsed.TotalSeconds;
        _busyUntil = Math.Max(_busyUntil, now) + (modelledSeconds / _speedup);
        var wait = _busyUntil - now;
        // Sleep whole milliseconds only; a shorter remainder stays on the timeline and is slept with the next step's.
        if (wait >= 0.001)
        {
            Thread.Sleep(TimeSpan.FromMilliseconds(Math.Floor(wait * 1000)));
        }
    }

    /// <summary>A managed batch: the tokens' positions and sequences are all the model looks at.</summary>
    private sealed class Batch(int capacity) : ITokenBatch
    {
        public int[] Positions { get; } = new int[capacity];

        public int[] Sequences { get; } = new int[capacity];

        public int Capacity => capacity;

        public int Count { get; private set; }

        public int Add(int token, int position, int sequence, bool wantLogits)
        {
            if (Count >= Capacity)
            {
                throw new InvalidOperationException($"The batch is full ({Capacity} tokens).");
            }

            Positions[Count] = position;
            Sequences[Count] = sequence;
            return Count++;
        }

        public void Clear() => Count = 0;
    }
}
