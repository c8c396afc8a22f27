using System.Net;
using GpuFleet.Contracts.Grpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Contracts.Tests.Grpc;

/// <summary>
/// Our gRPC server in process: Kestrel on 127.0.0.1 (a free port), HTTP/2 only (h2c needs a port of its own),
/// serving the test service, the health service and a canned Inference/Generate.
/// </summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcTestServer(WebApplication app, Uri address, InteropTestService service, GrpcHealthService health, CapturingLoggerProvider logs)
    {
        _app = app;
        Address = address;
        Service = service;
        Health = health;
        Logs = logs;
    }

    public Uri Address { get; }

    /// <summary>host:port, the form grpc-js takes.</summary>
    public string HostPort => $"{Address.Host}:{Address.Port}";

    public InteropTestService Service { get; }

    public GrpcHealthService Health { get; }

    public CapturingLoggerProvider Logs { get; }

    public static async Task<GrpcTestServer> StartAsync(Action<GrpcServerOptions>? configure = null, Action<WebApplication>? map = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        var logs = new CapturingLoggerProvider();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        if (configure is not null)
        {
            builder.Services.Configure(configure);
        }

        var app = builder.Build();
        var service = new InteropTestService();
        service.Map(app);
        var health = new GrpcHealthService();
        app.MapGrpcHealthService(health);
        FakeInference.Map(app);
        map?.Invoke(app);

        await app.StartAsync(TestTimeouts.Token());
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new GrpcTestServer(app, new Uri(address), service, health, logs);
    }

    /// <summary>Waits (bounded) for a log event: the server logs a call's end after the handler returned, so it can trail the client.</summary>
    public async Task<CapturingLoggerProvider.LogEntry> WaitForLogAsync(string eventName)
    {
        var deadline = DateTime.UtcNow + TestTimeouts.Default;
        while (true)
        {
            var entry = Logs.Entries.FirstOrDefault(e => e.EventId.Name == eventName);
            if (entry is not null)
            {
                return entry;
            }

            Assert.True(DateTime.UtcNow < deadline, $"The server never logged {eventName}.");
            await Task.Delay(20);
        }
    }

    public GrpcCallInvoker CreateInvoker(GrpcClientOptions? options = null) => GrpcCallInvoker.Create(Address, options);

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
