using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace GpuFleet.Contracts.Redis;

/// <summary>Encodes commands the way every Redis server accepts them: a RESP2 array of bulk strings.</summary>
public static class RespWriter
{
    /// <summary>Writes <c>*N\r\n</c> then the name and each argument as <c>$len\r\n...\r\n</c>.</summary>
    public static void WriteCommand(IBufferWriter<byte> output, in RedisCommand command)
    {
        ArgumentNullException.ThrowIfNull(output);
        var args = command.Args;
        WriteHeader(output, (byte)'*', args.Length + 1);
        WriteBulkString(output, command.Name);
        foreach (var arg in args)
        {
            arg.WriteTo(output);
        }
    }

    internal static void WriteBulkString(IBufferWriter<byte> output, string value)
    {
        WriteHeader(output, (byte)'$', Encoding.UTF8.GetByteCount(value));
        // This overload encodes straight into the writer's buffers, chunk by chunk for large values.
        Encoding.UTF8.GetBytes(value, output);
        WriteCrlf(output);
    }

    internal static void WriteBulkString(IBufferWriter<byte> output, ReadOnlySpan<byte> value)
    {
        WriteHeader(output, (byte)'$', value.Length);
        output.Write(value);
        WriteCrlf(output);
    }

    private static void WriteHeader(IBufferWriter<byte> output, byte prefix, long value)
    {
        var span = output.GetSpan(24);
        span[0] = prefix;
        Utf8Formatter.TryFormat(value, span[1..], out var digits);
        span[1 + digits] = (byte)'\r';
        span[2 + digits] = (byte)'\n';
        output.Advance(3 + digits);
    }

    private static void WriteCrlf(IBufferWriter<byte> output)
    {
        var span = output.GetSpan(2);
        span[0] = (byte)'\r';
        span[1] = (byte)'\n';
        output.Advance(2);
    }
}
