using System.Net;
using GpuFleet.Gateway.Hosting;

// gateway --http-port N --worker URL [--worker URL ...] [--host ADDRESS]; every option is also configuration (Gateway:*).
Dictionary<string, string?> settings;
try
{
    settings = GatewayCommandLine.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync(ex.Message);
    return 2;
}

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
builder.Configuration.AddInMemoryCollection(settings);
builder.Services.AddGpuFleetGateway(builder.Configuration);
var options = builder.Configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>() ?? new GatewayOptions();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    if (IPAddress.TryParse(options.Host, out var address))
    {
        kestrel.Listen(address, options.HttpPort);
    }
});

var app = builder.Build();
app.MapReverseProxy();
app.MapGet("/healthz", () => Results.Text("ok"));
app.MapGet("/workers", GpuFleet.Gateway.Load.WorkersEndpoint.WriteAsync);
await app.StartAsync();
foreach (var url in app.Urls)
{
    Console.WriteLine($"listening on {url}");
}

await app.WaitForShutdownAsync();
return 0;
