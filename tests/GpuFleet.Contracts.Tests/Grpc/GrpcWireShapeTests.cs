using System.Net;
using GpuFleet.Contracts.Tests.Interop;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Contracts.Tests.Grpc;

/// <summary>What our server puts on the wire, checked with a plain HTTP/2 client.</summary>
public sealed class GrpcWireShapeTests : IAsyncLifetime
{
    private GrpcTestServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await GrpcTestServer.StartAsync(map: app =>
            app.MapPost("/plain/route", () => Results.Text("plain")));
        _http = RawHttp.CreateClient(_server.Address);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Success_HasGrpcContentType_MessageBody_AndStatusInTrailers()
    {
        using var response = await RawHttp.SendAsync(_http, InteropTestService.EchoMethod, new EchoRequest { Text = "x" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(2, 0), response.Version);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Null(RawHttp.Header(response.Headers, "grpc-status"));
        Assert.Equal("0", RawHttp.Header(response.TrailingHeaders, "grpc-status"));
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(0, body[0]);
        Assert.Equal(body.Length - 5, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(1)));
    }

    [Fact]
    public async Task ErrorBeforeAnyMessage_IsTrailersOnly_WithPercentEncodedMessage()
    {
        using var response = await RawHttp.SendAsync(
            _http, InteropTestService.EchoMethod, new EchoRequest { Behaviour = new Behaviour { FailCode = 5, FailMessage = "nøt 100%" } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("5", RawHttp.Header(response.Headers, "grpc-status"));
        Assert.Equal("n%C3%B8t 100%25", RawHttp.Header(response.Headers, "grpc-message"));
        Assert.Empty(response.TrailingHeaders);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task NonGrpcContentType_Is415()
    {
        using var response = await RawHttp.SendAsync(_http, InteropTestService.EchoMethod, new EchoRequest(), contentType: "application/json");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task CompressedRequest_IsUnimplemented_AndSaysIdentityIsAccepted()
    {
        using var response = await RawHttp.SendAsync(_http, InteropTestService.EchoMethod, new EchoRequest(), headers: [("grpc-encoding", "gzip")]);

        Assert.Equal("12", RawHttp.Status(response));
        Assert.Equal("identity", RawHttp.Header(response.Headers, "grpc-accept-encoding"));
    }

    [Fact]
    public async Task MalformedTimeout_IsRefused()
    {
        using var response = await RawHttp.SendAsync(_http, InteropTestService.EchoMethod, new EchoRequest(), headers: [("grpc-timeout", "soon")]);

        Assert.Equal("13", RawHttp.Status(response));
    }

    [Fact]
    public async Task UnimplementedCatchAll_AnswersGrpcOnly_AndLeavesOtherRoutesAlone()
    {
        using var grpcResponse = await RawHttp.SendAsync(_http, "/no.such.Service/Method", new EchoRequest());
        Assert.Equal(HttpStatusCode.OK, grpcResponse.StatusCode);
        Assert.Equal("12", RawHttp.Status(grpcResponse));

        // A non-gRPC request to an unknown two-segment path is an ordinary 404, not a gRPC answer.
        using var plainUnknown = await RawHttp.SendAsync(_http, "/no/where", new EchoRequest(), contentType: "application/json");
        Assert.Equal(HttpStatusCode.NotFound, plainUnknown.StatusCode);

        // And a real route of the application still wins.
        using var plain = await RawHttp.SendAsync(_http, "/plain/route", new EchoRequest(), contentType: "application/json");
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.Equal("plain", await plain.Content.ReadAsStringAsync());
    }
}
