using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using GpuFleet.Contracts.Redis;

namespace GpuFleet.Contracts.Tests.Redis;

/// <summary>RESP2 replies parsed from exact bytes: whole, cut short, split at every offset, nested, malformed.</summary>
public sealed class RespParserTests
{
    public static TheoryData<string, string> Samples => new()
    {
        { "simple", "+OK\r\n" },
        { "error", "-ERR wrong number of arguments\r\n" },
        { "integer", ":-42\r\n" },
        { "bulk", "$5\r\nhello\r\n" },
        { "bulk with CRLF inside", "$4\r\na\r\nb\r\n" },
        { "empty bulk", "$0\r\n\r\n" },
        { "null bulk", "$-1\r\n" },
        { "empty array", "*0\r\n" },
        { "null array", "*-1\r\n" },
        { "nested", "*3\r\n*2\r\n:1\r\n$1\r\na\r\n*-1\r\n$-1\r\n" },
    };

    private static readonly Dictionary<string, RedisResult> Expected = new()
    {
        ["simple"] = RedisResult.SimpleString("OK"),
        ["error"] = RedisResult.Error("ERR wrong number of arguments"),
        ["integer"] = RedisResult.Integer(-42),
        ["bulk"] = RedisResult.BulkString("hello"u8.ToArray()),
        ["bulk with CRLF inside"] = RedisResult.BulkString("a\r\nb"u8.ToArray()),
        ["empty bulk"] = RedisResult.BulkString([]),
        ["null bulk"] = RedisResult.BulkString(null),
        ["empty array"] = RedisResult.Array([]),
        ["null array"] = RedisResult.Array(null),
        ["nested"] = RedisResult.Array([
            RedisResult.Array([RedisResult.Integer(1), RedisResult.BulkString("a"u8.ToArray())]),
            RedisResult.Array(null),
            RedisResult.BulkString(null)]),
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public void TryRead_WholeReply_ParsesAndConsumesExactly(string name, string wire)
    {
        var bytes = Encoding.UTF8.GetBytes(wire + "+NEXT\r\n");
        Assert.True(RespParser.TryRead(new ReadOnlySequence<byte>(bytes), out var result, out var consumed));
        Assert.Equal(Expected[name], result);
        Assert.Equal(Encoding.UTF8.GetByteCount(wire), new ReadOnlySequence<byte>(bytes).Slice(0, consumed).Length);
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void TryRead_EveryPrefix_IsIncompleteAndConsumesNothing(string name, string wire)
    {
        var bytes = Encoding.UTF8.GetBytes(wire);
        for (var length = 0; length < bytes.Length; length++)
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes, 0, length));
            Assert.False(RespParser.TryRead(ref reader, out _), $"{name}: {length} of {bytes.Length} bytes read as complete");
            Assert.Equal(0, reader.Consumed);
        }
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void TryRead_SplitAtEveryOffset_ParsesTheSame(string name, string wire)
    {
        var bytes = Encoding.UTF8.GetBytes(wire);
        for (var offset = 1; offset < bytes.Length; offset++)
        {
            Assert.True(RespParser.TryRead(Segments.SplitAt(bytes, offset), out var result, out _), $"{name} split at {offset}");
            Assert.Equal(Expected[name], result);
        }

        Assert.True(RespParser.TryRead(Segments.Chunks(bytes, 1), out var byteByByte, out _));
        Assert.Equal(Expected[name], byteByByte);
    }

    [Fact]
    public void Result_Accessors_ReadEachKind()
    {
        Assert.Equal("OK", RedisResult.SimpleString("OK").AsString());
        Assert.Equal(7, RedisResult.BulkString("7"u8.ToArray()).AsLong());
        Assert.Equal("12", RedisResult.Integer(12).AsString());
        Assert.True(RedisResult.BulkString(null).IsNull);
        Assert.Null(RedisResult.BulkString(null).AsString());
        Assert.True(RedisResult.Array(null).IsNull);
        Assert.Null(RedisResult.Array(null).AsArray());
        Assert.False(RedisResult.Integer(0).IsNull);
        var error = RedisResult.Error("NOSCRIPT No matching script.");
        Assert.True(error.IsError);
        Assert.Equal("NOSCRIPT No matching script.", error.ErrorMessage);
        Assert.Throws<RedisServerException>(() => error.EnsureSuccess());
        Assert.Throws<InvalidOperationException>(() => error.AsLong());
        Assert.Throws<InvalidOperationException>(() => RedisResult.Integer(1).AsArray());
        // ToString never shows a value: replies hold keys and payloads.
        Assert.DoesNotContain("secret", RedisResult.BulkString("secret"u8.ToArray()).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TryRead_BigBulkStringInSmallChunks_ParsesEveryByte()
    {
        var payload = new byte[1024 * 1024 + 3];
        new Random(7).NextBytes(payload);
        var wire = Encoding.ASCII.GetBytes($"${payload.Length}\r\n").Concat(payload).Concat("\r\n"u8.ToArray()).ToArray();

        Assert.True(RespParser.TryRead(Segments.Chunks(wire, 4096), out var result, out _));
        Assert.Equal(payload, result.AsBytes());
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(wire, 0, wire.Length - 1));
        Assert.False(RespParser.TryRead(ref reader, out _));
    }

    [Fact]
    public void TryRead_SeveralReplies_ReadsThemInOrder()
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>("+OK\r\n:1\r\n$1\r\nx\r\n:2"u8.ToArray()));
        var replies = new List<RedisResult>();
        while (RespParser.TryRead(ref reader, out var reply))
        {
            replies.Add(reply);
        }

        Assert.Equal([RedisResult.SimpleString("OK"), RedisResult.Integer(1), RedisResult.BulkString("x"u8.ToArray())], replies);
        Assert.Equal(2, reader.Remaining); // ":2" waits for its CRLF
    }

    [Theory]
    [InlineData("!3\r\nabc\r\n")]
    [InlineData(":12a\r\n")]
    [InlineData(":\r\n")]
    [InlineData("$3\r\nabcX\r\n")]
    [InlineData("$-2\r\n")]
    [InlineData("*-5\r\n")]
    [InlineData(":123456789012345678901234\r\n")]
    public void TryRead_MalformedInput_ThrowsProtocolException(string wire)
    {
        var bytes = Encoding.ASCII.GetBytes(wire);
        Assert.Throws<RedisProtocolException>(() => RespParser.TryRead(new ReadOnlySequence<byte>(bytes), out _, out _));
    }

    [Fact]
    public void TryRead_NestingDeeperThanLimit_Throws()
    {
        var wire = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("*1\r\n", RespParser.MaxDepth + 1)) + ":1\r\n");
        Assert.Throws<RedisProtocolException>(() => RespParser.TryRead(new ReadOnlySequence<byte>(wire), out _, out _));

        var allowed = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("*1\r\n", RespParser.MaxDepth)) + ":1\r\n");
        Assert.True(RespParser.TryRead(new ReadOnlySequence<byte>(allowed), out _, out _));
    }

    [Fact]
    public async Task TryRead_FromPipeFedOneByteAtATime_ReadsEveryReply()
    {
        var wire = Encoding.UTF8.GetBytes(string.Concat(Samples.Select(row => (string)row[1])));
        var pipe = new Pipe();
        var feeding = Task.Run(async () =>
        {
            foreach (var b in wire)
            {
                await pipe.Writer.WriteAsync(new[] { b });
            }

            await pipe.Writer.CompleteAsync();
        });

        var replies = new List<RedisResult>();
        while (true)
        {
            var read = await pipe.Reader.ReadAsync();
            var consumed = ReadAll(read.Buffer, replies);
            pipe.Reader.AdvanceTo(consumed, read.Buffer.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        await feeding;
        Assert.Equal(Samples.Select(row => Expected[(string)row[0]]), replies);
    }

    private static SequencePosition ReadAll(ReadOnlySequence<byte> buffer, List<RedisResult> into)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (RespParser.TryRead(ref reader, out var reply))
        {
            into.Add(reply);
        }

        return reader.Position;
    }
}
