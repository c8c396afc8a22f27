// The gateway (YARP routing by queue depth and KV-cache affinity) is built in its own issue; until then it
// only answers its health probe, so that deployments and scripts can already address it.
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddGpuFleetGateway();
var app = builder.Build();
app.MapGet("/healthz", () => Results.Text("ok"));
await app.RunAsync();
