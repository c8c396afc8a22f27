using System.Buffers;
using System.Text;
using GpuFleet.Contracts.Redis;

namespace GpuFleet.Contracts.Tests.Redis;

/// <summary>Commands encoded to exact RESP2 bytes.</summary>
public sealed class RespWriterTests
{
    [Fact]
    public void WriteCommand_MixedArguments_ExactBytes()
    {
        var output = new ArrayBufferWriter<byte>();
        RespWriter.WriteCommand(output, new RedisCommand("SET", "key", "välue", 42L, -7, new byte[] { 0, 13, 10 }, ""));

        var expected = "*7\r\n$3\r\nSET\r\n$3\r\nkey\r\n$6\r\nv\u00e4lue\r\n$2\r\n42\r\n$2\r\n-7\r\n$3\r\n\0\r\n\r\n$0\r\n\r\n";
        Assert.Equal(Encoding.UTF8.GetBytes(expected), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void WriteCommand_NoArguments_ExactBytes()
    {
        var output = new ArrayBufferWriter<byte>();
        RespWriter.WriteCommand(output, new RedisCommand("PING"));
        Assert.Equal("*1\r\n$4\r\nPING\r\n"u8.ToArray(), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void WriteCommand_LargeMultiByteText_RoundTripsThroughTheParser()
    {
        // 300 k characters of 1-, 2- and 3-byte UTF-8 cross every internal buffer boundary.
        var text = string.Concat(Enumerable.Range(0, 100_000).Select(i => "a\u00e9\u20ac"[i % 3].ToString()));
        var output = new ArrayBufferWriter<byte>(16);
        RespWriter.WriteCommand(output, new RedisCommand("SET", "k", text));

        Assert.True(RespParser.TryRead(new ReadOnlySequence<byte>(output.WrittenMemory), out var parsed, out var consumed));
        Assert.Equal(output.WrittenCount, new ReadOnlySequence<byte>(output.WrittenMemory).Slice(0, consumed).Length);
        var items = parsed.AsArray()!;
        Assert.Equal(["SET", "k", text], items.Select(item => item.AsString()));
    }

    [Fact]
    public void Argument_ToString_HidesValues()
    {
        Assert.DoesNotContain("secret", ((RedisArgument)"secret").ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("secret", new RedisCommand("AUTH", "secret").ToString(), StringComparison.Ordinal);
    }
}
