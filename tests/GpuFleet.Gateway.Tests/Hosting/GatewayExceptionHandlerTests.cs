using System.Net;
using System.Text.Json;
using GpuFleet.Contracts.V1;
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

namespace GpuFleet.Gateway.Tests.Hosting;

/// <summary>
/// The gateway's one catch-all, wired as the gateway wires it (AddGpuFleetExceptionHandler + UseExceptionHandler) on a
/// real Kestrel: an unexpected exception in a request becomes an OpenAI-shaped 500 (a gRPC INTERNAL status for gRPC),
/// logged once, without the exception's text.
/// </summary>
public sealed class GatewayExceptionHandlerTests
{
    private const string Secret = "secret internals";

    [Fact]
    public async Task An_unexpected_exception_becomes_an_OpenAI_500_without_its_text_or_the_headers_set_before_it()
    {
        var logs = new CapturedLogs();
        await using var app = await StartAsync(HttpProtocols.Http1, logs, context =>
        {
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers["x-partial"] = "1";
            throw new InvalidOperationException(Secret);
        });
        using var client = new HttpClient { Timeout = TestTimeouts.Default };

        using var response = await client.PostAsync(new Uri(new Uri(Address(app)), "/v1/chat/completions?api_key=abc"), new StringContent("{}"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.False(response.Headers.Contains("x-partial"));
        using var json = JsonDocument.Parse(body);
        var error = json.RootElement.GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Equal("internal_error", error.GetProperty("code").GetString());
        Assert.DoesNotContain(Secret, body, StringComparison.Ordinal);
        var logged = Assert.Single(logs.Entries, e => e.Exception is not null || e.Level >= LogLevel.Error);
        Assert.Equal("UnexpectedError", logged.EventId.Name);
        Assert.Equal(710, logged.EventId.Id);
        Assert.IsType<InvalidOperationException>(logged.Exception);
        Assert.Equal("Unexpected error serving /v1/chat/completions", logged.Message);
    }

    [Fact]
    public async Task An_unexpected_exception_in_a_grpc_call_reaches_the_client_as_status_INTERNAL_without_its_text()
    {
        await using var app = await StartAsync(HttpProtocols.Http2, new CapturedLogs(), _ => throw new InvalidOperationException(Secret));
        using var channel = GrpcChannel.ForAddress(Address(app));
        using var call = new WorkerStatusService.WorkerStatusServiceClient(channel).Watch(new WatchStatusRequest(), deadline: DateTime.UtcNow.Add(TestTimeouts.Default));

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());

        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.DoesNotContain(Secret, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_the_client_abandoned_is_neither_answered_as_an_error_nor_logged_as_one()
    {
        var logs = new CapturedLogs();
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartAsync(HttpProtocols.Http1, logs, async context =>
        {
            waiting.TrySetResult();
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        }, finished);
        using var client = new HttpClient { Timeout = TestTimeouts.Default };
        using var abandon = new CancellationTokenSource();

        var request = client.GetAsync(new Uri(new Uri(Address(app)), "/slow"), abandon.Token);
        await waiting.Task.WaitAsync(TestTimeouts.Default);
        await abandon.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);

        Assert.Equal(StatusCodes.Status499ClientClosedRequest, await finished.Task.WaitAsync(TestTimeouts.Default));
        Assert.DoesNotContain(logs.Entries, e => e.Exception is not null || e.Level >= LogLevel.Error);
    }

    /// <summary>
    /// A Kestrel app with the gateway's exception handling around <paramref name="handler"/>; <paramref name="finished"/>
    /// gets the status the request ended with, seen from outside the exception handler.
    /// </summary>
    private static async Task<WebApplication> StartAsync(HttpProtocols protocols, CapturedLogs logs, RequestDelegate handler, TaskCompletionSource<int>? finished = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = protocols));
        builder.Services.AddGpuFleetExceptionHandler();
        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            finally
            {
                finished?.TrySetResult(context.Response.StatusCode);
            }
        });
        app.UseExceptionHandler();
        app.Run(handler);
        await app.StartAsync(TestTimeouts.Token());
        return app;
    }

    private static string Address(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
}
