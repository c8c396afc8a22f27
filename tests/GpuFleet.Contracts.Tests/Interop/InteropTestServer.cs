using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Contracts.Tests.Interop;

/// <summary>
/// A Grpc.AspNetCore server in process, set up as the worker sets up its gRPC port: Kestrel on 127.0.0.1 (a free
/// port), HTTP/2 only, serving the interop test service, grpc.health.v1, server reflection and a canned Inference/Generate.
/// </summary>
internal sealed class InteropTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private InteropTestServer(WebApplication app, Uri address, InteropTestService service)
    {
        _app = app;
        Address = address;
        Service = service;
    }

    public Uri Address { get; }

    /// <summary>host:port, the form grpc-js takes.</summary>
    public string HostPort => $"{Address.Host}:{Address.Port}";

    public InteropTestService Service { get; }

    public static async Task<InteropTestServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Logging.ClearProviders();
        var service = new InteropTestService();
        builder.Services.AddSingleton(service);
        // The worker's limits: 4 MiB in, no limit out.
        builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = 4 * 1024 * 1024);
        // One check, as on the worker (there it follows readiness): with none, the overall status would be UNKNOWN.
        builder.Services.AddGrpcHealthChecks().AddCheck("interop", () => HealthCheckResult.Healthy());
        builder.Services.AddGrpcReflection();

        var app = builder.Build();
        app.MapGrpcService<InteropTestService>();
        app.MapGrpcService<FakeInference>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();

        await app.StartAsync(TestTimeouts.Token());
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new InteropTestServer(app, new Uri(address), service);
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
