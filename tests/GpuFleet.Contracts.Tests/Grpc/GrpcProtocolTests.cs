using System.Buffers.Binary;
using System.IO.Pipelines;
using GpuFleet.Contracts.Grpc;
using GpuFleet.Contracts.Grpc.Internal;
using GpuFleet.Contracts.Tests.Interop;

namespace GpuFleet.Contracts.Tests.Grpc;

public sealed class GrpcProtocolTests
{
    [Theory]
    [InlineData("1H", 36_000_000_000L)]
    [InlineData("2M", 1_200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("250m", 2_500_000L)]
    [InlineData("1500u", 15_000L)]
    [InlineData("1000n", 10L)]
    [InlineData("99999999m", 999_999_990_000L)]
    public void TryParseTimeout_EveryUnit_Parses(string header, long expectedTicks)
    {
        Assert.True(GrpcProtocol.TryParseTimeout(header, out var timeout));
        Assert.Equal(expectedTicks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("m")]
    [InlineData("10")]
    [InlineData("10x")]
    [InlineData("-1S")]
    [InlineData("1.5S")]
    [InlineData("123456789S")]
    public void TryParseTimeout_Malformed_IsRefused(string header) =>
        Assert.False(GrpcProtocol.TryParseTimeout(header, out _));

    [Theory]
    [InlineData(1L, "1u")]
    [InlineData(2_500_000L, "250000u")]
    [InlineData(10_000_000_000L, "1000000m")]
    [InlineData(36_000_000_000_000L, "3600000S")]
    public void FormatTimeout_PicksFinestUnitWithin8Digits(long ticks, string expected) =>
        Assert.Equal(expected, GrpcProtocol.FormatTimeout(TimeSpan.FromTicks(ticks)));

    [Fact]
    public void FormatTimeout_RoundsUp_SoTheDeadlineIsNeverEarly()
    {
        var timeout = TimeSpan.FromTicks(10_000_000_001); // 1000 s and 100 ns: microseconds overflow 8 digits.
        Assert.True(GrpcProtocol.TryParseTimeout(GrpcProtocol.FormatTimeout(timeout), out var parsed));
        Assert.True(parsed >= timeout);
        Assert.True(parsed - timeout < TimeSpan.FromMilliseconds(1));
    }

    [Theory]
    [InlineData("plain ascii: ok!", "plain ascii: ok!")]
    [InlineData("100%", "100%25")]
    [InlineData("tab\there", "tab%09here")]
    [InlineData("nøt", "n%C3%B8t")]
    [InlineData("✓", "%E2%9C%93")]
    public void EncodeMessage_PercentEncodesOutsidePrintableAsciiAndPercent(string message, string expected) =>
        Assert.Equal(expected, GrpcProtocol.EncodeMessage(message));

    [Theory]
    [InlineData("nøt føund: 100% ✓\tdone")]
    [InlineData("日本語のエラー")]
    [InlineData("%%%")]
    [InlineData("")]
    public void DecodeMessage_UndoesEncodeMessage(string message) =>
        Assert.Equal(message, GrpcProtocol.DecodeMessage(GrpcProtocol.EncodeMessage(message)));

    [Theory]
    [InlineData("100%", "100%")]
    [InlineData("%zz and %4", "%zz and %4")]
    [InlineData("a%20b", "a b")]
    public void DecodeMessage_MalformedEscapes_AreKeptNotFatal(string header, string expected) =>
        Assert.Equal(expected, GrpcProtocol.DecodeMessage(header));

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("APPLICATION/GRPC; charset=utf-8", true)]
    [InlineData("application/grpc+json", false)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void IsGrpcContentType_AcceptsGrpcAndProtoOnly(string? contentType, bool expected) =>
        Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(contentType));

    [Theory]
    [InlineData("0", GrpcStatusCode.OK)]
    [InlineData("14", GrpcStatusCode.Unavailable)]
    [InlineData("16", GrpcStatusCode.Unauthenticated)]
    [InlineData("17", GrpcStatusCode.Unknown)]
    [InlineData("oops", GrpcStatusCode.Unknown)]
    public void ParseStatus_UnknownValues_AreUnknown(string value, GrpcStatusCode expected) =>
        Assert.Equal(expected, GrpcProtocol.ParseStatus(value));

    [Fact]
    public void StatusCode_HasAllSeventeenCodes() =>
        Assert.Equal(Enumerable.Range(0, 17), Enum.GetValues<GrpcStatusCode>().Select(code => (int)code));

    [Fact]
    public async Task Framing_ServerReadsWhatTheClientFramed()
    {
        var request = new EchoRequest { Text = "héllo", Padding = Google.Protobuf.ByteString.CopyFrom(new byte[1000]) };
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(GrpcMessageFraming.ToFramedArray(request, maxSendMessageSize: null));
        await pipe.Writer.CompleteAsync();

        var read = await GrpcMessageFraming.ReadSingleMessageAsync(pipe.Reader, EchoRequest.Parser, 4096, TestTimeouts.Token());

        Assert.Equal(request, read);
    }

    [Fact]
    public async Task Framing_CompressedFlag_IsRefused()
    {
        var framed = GrpcMessageFraming.ToFramedArray(new EchoRequest { Text = "x" }, null);
        framed[0] = 1;

        var ex = await Assert.ThrowsAsync<GrpcException>(() => ReadAsync(framed));

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task Framing_OverTheLimit_IsRefusedFromThePrefixAlone()
    {
        // Only the prefix arrives: the limit must be enforced before waiting for (or buffering) the payload.
        var prefix = new byte[5];
        BinaryPrimitives.WriteUInt32BigEndian(prefix.AsSpan(1), 100_000_000);
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(prefix);

        var ex = await Assert.ThrowsAsync<GrpcException>(
            () => GrpcMessageFraming.ReadSingleMessageAsync(pipe.Reader, EchoRequest.Parser, 4096, TestTimeouts.Token()).AsTask());

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task Framing_TwoMessagesForAUnaryMethod_IsAProtocolError()
    {
        var one = GrpcMessageFraming.ToFramedArray(new EchoRequest { Text = "x" }, null);

        var ex = await Assert.ThrowsAsync<GrpcException>(() => ReadAsync([.. one, .. one]));

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public async Task Framing_EmptyBody_IsAProtocolError()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() => ReadAsync([]));

        Assert.Equal(GrpcStatusCode.Internal, ex.StatusCode);
    }

    [Fact]
    public void Framing_OverTheSendLimit_IsResourceExhausted()
    {
        var ex = Assert.Throws<GrpcException>(
            () => GrpcMessageFraming.ToFramedArray(new EchoRequest { Padding = Google.Protobuf.ByteString.CopyFrom(new byte[100]) }, 50));

        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.StatusCode);
    }

    private static async Task<EchoRequest> ReadAsync(byte[] body)
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(body);
        await pipe.Writer.CompleteAsync();
        return await GrpcMessageFraming.ReadSingleMessageAsync(pipe.Reader, EchoRequest.Parser, 4096, TestTimeouts.Token());
    }
}
