using System.Net;
using GpuFleet.Gateway.Hosting;

// The gateway (GatewayCommandLine lists its options, each also configuration: Gateway:*, Redis:Configuration), or
// `gateway keys add|list|remove` to manage API keys.
return await GatewayCommandLine.RunAsync(args, ServeAsync, Console.Out, Console.Error);

static async Task<int> ServeAsync(Dictionary<string, string?> settings)
{
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
    // Quiet defaults (one line per request from ASP.NET Core and YARP is noise at this rate); configuration overrides them.
    builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
    {
        InitialData = new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
            ["Logging:LogLevel:Yarp"] = "Warning",
            // ASP.NET Core starts an Activity for every request while this category logs at any level, and the forwarder's
            // HttpClient then starts and propagates a child one: about 15 % of the gateway's CPU per request (five alternated
            // pairs of the gateway benchmark, docs/benchmarks.md). A tracer that listens still gets its activities.
            ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = "None",
        },
    });
    builder.Configuration.AddInMemoryCollection(settings);
    builder.Services.AddGpuFleetGateway(builder.Configuration);
    var options = builder.Configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>() ?? new GatewayOptions();
    builder.WebHost.ConfigureKestrel(kestrel =>
    {
        if (IPAddress.TryParse(options.Host, out var address))
        {
            kestrel.Listen(address, options.HttpPort);
            if (options.GrpcPort != 0)
            {
                // gRPC clients speak HTTP/2 without TLS (prior knowledge) here, as on the workers' gRPC ports.
                kestrel.Listen(address, options.GrpcPort, listen => listen.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2);
            }
        }
    });

    var app = builder.Build();
    try
    {
        app.MapGpuFleetGateway();
        await app.StartAsync();
    }
    catch (Microsoft.Extensions.Options.OptionsValidationException ex)
    {
        await Console.Error.WriteLineAsync("gateway: invalid configuration:\n  " + string.Join("\n  ", ex.Failures));
        return 2;
    }
    catch (InvalidOperationException ex)
    {
        // E.g. a keys file that is missing or invalid: the message names the problem; no stack trace.
        await Console.Error.WriteLineAsync($"gateway: cannot start: {ex.Message}");
        return 1;
    }

    foreach (var url in app.Urls)
    {
        Console.WriteLine($"listening on {url}");
    }

    await app.WaitForShutdownAsync();
    return 0;
}
