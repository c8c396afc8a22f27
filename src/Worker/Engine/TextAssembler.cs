using System.Text;

namespace GpuFleet.Worker.Engine;

/// <summary>
/// Turns token bytes into text deltas for one request: multi-byte UTF-8 characters split across tokens
/// are held until complete, and text that could be the start of a stop sequence is held until it is
/// known not to be one. When a stop sequence appears, the text before it is released and the rest dropped.
/// </summary>
internal sealed class TextAssembler
{
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private readonly IReadOnlyList<string> _stops;
    private readonly StringBuilder _held = new();
    private char[] _chars = new char[64];

    public TextAssembler(IReadOnlyList<string> stopSequences) =>
        _stops = stopSequences.Where(s => s.Length > 0).ToArray();

    /// <summary>True once a stop sequence was seen; nothing more is released after that.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds a token's bytes; returns the text that can be released now.</summary>
    public string Append(ReadOnlySpan<byte> bytes)
    {
        if (Stopped)
        {
            return string.Empty;
        }

        var needed = _decoder.GetCharCount(bytes, flush: false);
        if (needed > _chars.Length)
        {
            _chars = new char[Math.Max(needed, _chars.Length * 2)];
        }

        var count = _decoder.GetChars(bytes, _chars, flush: false);
        _held.Append(_chars, 0, count);
        return Release();
    }

    /// <summary>At the end of generation: everything still held (an incomplete character becomes U+FFFD).</summary>
    public string Flush()
    {
        if (Stopped)
        {
            return string.Empty;
        }

        var count = _decoder.GetChars(ReadOnlySpan<byte>.Empty, _chars, flush: true);
        _held.Append(_chars, 0, count);
        var rest = _held.ToString();
        _held.Clear();
        return rest;
    }

    private string Release()
    {
        if (_stops.Count == 0)
        {
            var all = _held.ToString();
            _held.Clear();
            return all;
        }

        var text = _held.ToString();
        var firstStop = -1;
        foreach (var stop in _stops)
        {
            var at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (firstStop < 0 || at < firstStop))
            {
                firstStop = at;
            }
        }

        if (firstStop >= 0)
        {
            Stopped = true;
            _held.Clear();
            return text[..firstStop];
        }

        // Hold back the longest suffix that is a proper prefix of some stop sequence.
        var hold = 0;
        foreach (var stop in _stops)
        {
            for (var n = Math.Min(stop.Length - 1, text.Length); n > hold; n--)
            {
                if (text.AsSpan(text.Length - n).SequenceEqual(stop.AsSpan(0, n)))
                {
                    hold = n;
                    break;
                }
            }
        }

        _held.Clear();
        _held.Append(text, text.Length - hold, hold);
        return text[..^hold];
    }
}
