using System.Net;
using GpuFleet.Worker.Api.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Hosting;

/// <summary>
/// The worker process: Kestrel with an HTTP/1.1 port (OpenAI API, health, metrics) and an HTTP/2-only
/// port for gRPC (Kestrel cannot serve HTTP/1.1 and cleartext HTTP/2 on one port).
/// </summary>
internal static class WorkerServer
{
    /// <summary>Idle time on a gRPC connection before Kestrel pings the peer.</summary>
    internal static readonly TimeSpan GrpcKeepAlivePingDelay = TimeSpan.FromSeconds(20);

    /// <summary>How long a ping may go unanswered before Kestrel closes the connection.</summary>
    internal static readonly TimeSpan GrpcKeepAlivePingTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Serves until shutdown; <paramref name="settings"/> are the command line's configuration values (they override the rest).</summary>
    public static async Task<int> RunAsync(IReadOnlyDictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        // Quiet defaults (a line per request from ASP.NET Core is noise); configuration overrides them.
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                // The gRPC health publisher runs the readiness check every second, and the health check service logs
                // each Unhealthy result at Error: throughout loading and draining (expected states, logged once by the
                // worker itself) that would be an error line a second.
                ["Logging:LogLevel:Microsoft.Extensions.Diagnostics.HealthChecks"] = "Critical",
            },
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Services.AddGpuFleetWorker(builder.Configuration);

        var worker = builder.Configuration.GetSection(WorkerOptions.SectionName).Get<WorkerOptions>() ?? new WorkerOptions();
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o =>
            o.ShutdownTimeout = TimeSpan.FromSeconds(worker.DrainTimeoutSeconds + 10));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = worker.MaxRequestBodyBytes;
            // HTTP/2 (the gRPC port only) pings an idle connection, so a gateway that vanished behind a silent
            // network is dropped and its status streams end instead of being written into the void.
            kestrel.Limits.Http2.KeepAlivePingDelay = GrpcKeepAlivePingDelay;
            kestrel.Limits.Http2.KeepAlivePingTimeout = GrpcKeepAlivePingTimeout;
            if (!IPAddress.TryParse(worker.Host, out var address))
            {
                return; // reported by options validation at start
            }

            kestrel.Listen(address, worker.HttpPort, listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.Listen(address, worker.GrpcPort, listen => listen.Protocols = HttpProtocols.Http2);
        });

        var app = builder.Build();
        app.Use(HandleUnexpectedErrorsAsync);
        try
        {
            // Mapping reads the validated options: a bad setting (a missing model file) is reported here, not as a crash.
            app.MapGpuFleetWorker();
            app.MapFallback(context => new OpenAiException(404, $"No endpoint {context.Request.Method} {context.Request.Path}.", "invalid_request_error", null, "not_found").WriteAsync(context));
            await app.StartAsync();
        }
        catch (Microsoft.Extensions.Options.OptionsValidationException ex)
        {
            await Console.Error.WriteLineAsync("worker: invalid configuration:\n  " + string.Join("\n  ", ex.Failures));
            return 2;
        }

        foreach (var url in app.Urls)
        {
            Console.WriteLine($"listening on {url}");
        }

        await app.WaitForShutdownAsync();
        return 0;
    }

    /// <summary>Any unexpected failure becomes an OpenAI-shaped 500 without internals; the details go to the log.</summary>
    internal static async Task HandleUnexpectedErrorsAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && !context.Response.HasStarted)
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("GpuFleet.Worker.Api");
            WorkerServerLog.UnexpectedError(logger, ex, context.Request.Path);
            context.Response.Clear(); // headers set before the failure (a stream's content type) must not describe the error
            await new OpenAiException(500, "Internal error; see the worker log.", "server_error", null, "internal_error").WriteAsync(context);
        }
    }
}

internal static partial class WorkerServerLog
{
    [LoggerMessage(EventId = 20, EventName = "UnexpectedError", Level = LogLevel.Error, Message = "Unexpected error serving {Path}")]
    public static partial void UnexpectedError(ILogger logger, Exception exception, string path);
}
