using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace GpuFleet.Contracts.Redis;

/// <summary>Parses RESP2 replies from buffered bytes, one complete reply at a time.</summary>
/// <remarks>
/// Incremental by re-scan: <see cref="TryRead"/> first checks, without allocating, that a whole reply is buffered
/// (bulk strings are skipped by their length, so a large value is never scanned byte by byte); only then does it
/// build the <see cref="RedisResult"/>. An incomplete reply consumes nothing, so the caller reads more and retries.
/// </remarks>
public static class RespParser
{
    /// <summary>Deeper nesting than any Redis command replies with; guards the recursive build against a hostile peer.</summary>
    public const int MaxDepth = 64;

    /// <summary>Redis's own limit on one bulk string (proto-max-bulk-len default, 512 MB).</summary>
    public const long MaxBulkLength = 512L * 1024 * 1024;

    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    /// <summary>
    /// Reads one reply and advances <paramref name="reader"/> past it; false (and nothing consumed) when the buffer
    /// holds only part of a reply. Throws <see cref="RedisProtocolException"/> on bytes that are not RESP2.
    /// </summary>
    public static bool TryRead(ref SequenceReader<byte> reader, out RedisResult result)
    {
        var probe = reader;
        if (!IsComplete(ref probe))
        {
            result = default;
            return false;
        }

        result = Read(ref reader, 0);
        return true;
    }

    /// <summary>Reads one reply from the start of <paramref name="buffer"/>; <paramref name="consumed"/> is where it ended.</summary>
    public static bool TryRead(in ReadOnlySequence<byte> buffer, out RedisResult result, out SequencePosition consumed)
    {
        var reader = new SequenceReader<byte>(buffer);
        var done = TryRead(ref reader, out result);
        consumed = done ? reader.Position : buffer.Start;
        return done;
    }

    // Counts outstanding values instead of recursing, so the check itself cannot be driven deep.
    private static bool IsComplete(ref SequenceReader<byte> reader)
    {
        long outstanding = 1;
        while (outstanding > 0)
        {
            if (!reader.TryRead(out var type) || !reader.TryReadTo(out ReadOnlySequence<byte> line, Crlf))
            {
                return false;
            }

            outstanding--;
            switch (type)
            {
                case (byte)'+' or (byte)'-':
                    break;
                case (byte)':':
                    ParseNumber(line);
                    break;
                case (byte)'$':
                    var length = ParseLength(line, MaxBulkLength);
                    if (length >= 0)
                    {
                        if (reader.Remaining < length + 2)
                        {
                            return false;
                        }

                        reader.Advance(length);
                        ExpectCrlf(ref reader);
                    }

                    break;
                case (byte)'*':
                    var count = ParseLength(line, int.MaxValue);
                    outstanding += Math.Max(count, 0);
                    break;
                default:
                    throw new RedisProtocolException($"Unexpected RESP type byte 0x{type:x2}.");
            }
        }

        return true;
    }

    private static RedisResult Read(ref SequenceReader<byte> reader, int depth)
    {
        reader.TryRead(out var type);
        reader.TryReadTo(out ReadOnlySequence<byte> line, Crlf);
        switch (type)
        {
            case (byte)'+':
                return RedisResult.SimpleString(ReadSimpleText(line));
            case (byte)'-':
                return RedisResult.Error(Encoding.UTF8.GetString(line));
            case (byte)':':
                return RedisResult.Integer(ParseNumber(line));
            case (byte)'$':
                var length = ParseLength(line, MaxBulkLength);
                if (length < 0)
                {
                    return RedisResult.BulkString(null);
                }

                var bytes = length == 0 ? [] : new byte[length];
                reader.TryCopyTo(bytes);
                reader.Advance(length + 2);
                return RedisResult.BulkString(bytes);
            default:
                var count = ParseLength(line, int.MaxValue);
                if (count < 0)
                {
                    return RedisResult.Array(null);
                }

                if (depth >= MaxDepth)
                {
                    throw new RedisProtocolException($"Reply nested deeper than {MaxDepth} arrays.");
                }

                var items = count == 0 ? [] : new RedisResult[count];
                for (var i = 0; i < items.Length; i++)
                {
                    items[i] = Read(ref reader, depth + 1);
                }

                return RedisResult.Array(items);
        }
    }

    // The status replies that make up most traffic come back as cached strings instead of new ones.
    private static string ReadSimpleText(in ReadOnlySequence<byte> line)
    {
        if (line.IsSingleSegment)
        {
            var span = line.FirstSpan;
            if (span.SequenceEqual("OK"u8))
            {
                return "OK";
            }

            if (span.SequenceEqual("PONG"u8))
            {
                return "PONG";
            }

            if (span.SequenceEqual("QUEUED"u8))
            {
                return "QUEUED";
            }
        }

        return Encoding.UTF8.GetString(line);
    }

    private static long ParseLength(in ReadOnlySequence<byte> line, long max)
    {
        var value = ParseNumber(line);
        if (value < -1 || value > max)
        {
            throw new RedisProtocolException($"Length {value} is out of range.");
        }

        return value;
    }

    private static long ParseNumber(in ReadOnlySequence<byte> line)
    {
        // 20 bytes hold any signed 64-bit decimal.
        Span<byte> digits = stackalloc byte[20];
        if (line.Length is 0 or > 20)
        {
            throw new RedisProtocolException("Integer line is empty or too long.");
        }

        line.CopyTo(digits);
        digits = digits[..(int)line.Length];
        if (!Utf8Parser.TryParse(digits, out long value, out var used) || used != digits.Length)
        {
            throw new RedisProtocolException("Integer line is not a decimal number.");
        }

        return value;
    }

    private static void ExpectCrlf(ref SequenceReader<byte> reader)
    {
        if (!reader.IsNext(Crlf, advancePast: true))
        {
            throw new RedisProtocolException("Bulk string is not followed by CRLF.");
        }
    }
}
