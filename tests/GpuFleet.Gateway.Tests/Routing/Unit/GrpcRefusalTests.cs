using System.Net;
using GpuFleet.Contracts.V1;
using GpuFleet.Gateway.Forwarding;
using GpuFleet.Testing;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>The gateway's own gRPC refusals, read by Grpc.Net.Client from a real Kestrel over h2c.</summary>
public sealed class GrpcRefusalTests
{
    [Theory]
    [InlineData(401, StatusCode.Unauthenticated)]
    [InlineData(429, StatusCode.ResourceExhausted)]
    [InlineData(413, StatusCode.ResourceExhausted)]
    [InlineData(503, StatusCode.Unavailable)]
    [InlineData(502, StatusCode.Unavailable)]
    [InlineData(504, StatusCode.DeadlineExceeded)]
    [InlineData(400, StatusCode.InvalidArgument)]
    [InlineData(404, StatusCode.Unimplemented)]
    [InlineData(500, StatusCode.Internal)]
    public void Http_statuses_map_to_grpc_statuses(int http, StatusCode grpc) => Assert.Equal(grpc, GrpcRefusal.FromHttpStatus(http));

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("APPLICATION/GRPC; charset=utf-8", true)]
    [InlineData("application/grpcx", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Grpc_requests_are_recognised_by_content_type(string? contentType, bool expected)
    {
        var http = new DefaultHttpContext();
        http.Request.ContentType = contentType;

        Assert.Equal(expected, GrpcRefusal.IsGrpc(http.Request));
    }

    [Fact]
    public async Task A_refusal_reaches_a_grpc_client_with_its_status_message_and_pushback()
    {
        const string message = "Too many requests: 100% ✓ wait";
        await using var app = await StartAsync(http =>
        {
            GrpcRefusal.Write(http, StatusCode.ResourceExhausted, message, retryAfterSeconds: 3);
            return Task.CompletedTask;
        });
        using var channel = GrpcChannel.ForAddress(Address(app));
        using var call = new WorkerStatusService.WorkerStatusServiceClient(channel).Watch(new WatchStatusRequest(), deadline: DateTime.UtcNow.Add(TestTimeouts.Default));

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal(message, error.Status.Detail);
        Assert.Equal("3000", error.Trailers.GetValue("grpc-retry-pushback-ms"));
    }

    [Fact]
    public async Task A_status_sent_in_headers_that_already_went_out_is_repeated_as_trailers()
    {
        await using var app = await StartAsync(async http =>
        {
            // What YARP does with a worker's trailers-only answer when it flushes the headers first: without END_STREAM
            // on them, grpc-js looks for the status in trailers only (Grpc.Net.Client also reads it from the headers).
            http.Response.ContentType = "application/grpc";
            http.Response.Headers["grpc-status"] = "12";
            http.Response.Headers["grpc-message"] = "Service is unimplemented.";
            await http.Response.StartAsync();
            GrpcRefusal.CopyHeaderStatusToTrailers(http.Response);
        });
        using var client = new HttpClient { Timeout = TestTimeouts.Default };
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(Address(app)), "/gpufleet.test.v1.InteropTest/Unmapped"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(new byte[5]),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");

        using var response = await client.SendAsync(request);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());

        Assert.Equal("12", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
        Assert.Equal("Service is unimplemented.", Assert.Single(response.TrailingHeaders.GetValues("grpc-message")));
    }

    private static async Task<WebApplication> StartAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync(TestTimeouts.Token());
        return app;
    }

    private static string Address(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
}
