using GpuFleet.Worker;
using GpuFleet.Worker.Api;
using GpuFleet.Worker.Api.Grpc;
using GpuFleet.Worker.Api.OpenAi;
using GpuFleet.Worker.Engine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the worker's HTTP API: OpenAI endpoints, health, readiness and metrics.</summary>
public static class WorkerEndpointRouteBuilderExtensions
{
    /// <summary>Response header on the OpenAI API of a simulated worker (<c>--simulate</c>): the answers are not a model's.</summary>
    public const string SimulatedHeader = "x-gpufleet-simulated";

    /// <summary>
    /// Maps the HTTP API (to the HTTP port) and the gRPC services (to the gRPC port); with a port of 0 the
    /// endpoints are not tied to a port, since the chosen one is known only after start.
    /// </summary>
    public static IEndpointRouteBuilder MapGpuFleetWorker(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<WorkerOptions>>().Value;
        var http = options.HttpPort == 0 ? endpoints : endpoints.MapGroup(string.Empty).RequireHost($"*:{options.HttpPort}");
        var openAi = http.MapGroup(string.Empty);
        if (options.IsSimulated)
        {
            // Every OpenAI response of a simulated worker says so, errors included, whichever client reads it.
            openAi.AddEndpointFilter(static (context, next) =>
            {
                context.HttpContext.Response.Headers[SimulatedHeader] = "true";
                return next(context);
            });
        }

        openAi.MapPost("/v1/chat/completions", ChatCompletionsEndpoint.HandleAsync);
        openAi.MapPost("/v1/completions", CompletionsEndpoint.HandleAsync);
        openAi.MapGet("/v1/models", ModelsAsync);
        openAi.MapGet("/v1/models/{id}", ModelAsync);
        http.MapGet("/healthz", () => Results.Text("ok"));
        http.MapGet("/readyz", Ready);
        // The instruments exist from WorkerMetrics' construction on: build it now so the first scrape sees them.
        _ = endpoints.ServiceProvider.GetRequiredService<WorkerMetrics>();
        http.MapPrometheusScrapingEndpoint("/metrics");
        http.MapGet("/status", StatusAsync);
        WorkerGrpcEndpoints.Map(endpoints, options.GrpcPort == 0 ? null : $"*:{options.GrpcPort}");
        return endpoints;
    }

    private static IResult Ready(WorkerApi api)
    {
        if (api.Lifecycle.Draining)
        {
            return Results.Text("draining", statusCode: 503);
        }

        try
        {
            api.EnsureServing();
            return Results.Text("ready");
        }
        catch (OpenAiException)
        {
            return Results.Text("loading", statusCode: 503);
        }
    }

    /// <summary>
    /// The worker's status as proto3 JSON (the <c>WorkerStatus</c> message of the status stream): how a gateway
    /// that knows only the HTTP address learns the gRPC address to watch.
    /// </summary>
    private static Task StatusAsync(HttpContext http, WorkerStatusGrpcService status)
    {
        var snapshot = status.Snapshot();
        snapshot.ObservedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(Google.Protobuf.JsonFormatter.Default.Format(snapshot), http.RequestAborted);
    }

    private static Task ModelsAsync(HttpContext http, WorkerApi api)
    {
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(ResponseJson.Build(json =>
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            WriteModel(json, api);
            json.WriteEndArray();
            json.WriteEndObject();
        }), http.RequestAborted);
    }

    private static async Task ModelAsync(HttpContext http, WorkerApi api, string id)
    {
        try
        {
            api.EnsureModel(id);
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(ResponseJson.Build(json => WriteModel(json, api)), http.RequestAborted);
        }
        catch (OpenAiException ex)
        {
            await ex.WriteAsync(http);
        }
    }

    private static void WriteModel(System.Text.Json.Utf8JsonWriter json, WorkerApi api)
    {
        json.WriteStartObject();
        json.WriteString("id", api.ModelId);
        json.WriteString("object", "model");
        json.WriteNumber("created", new DateTimeOffset(File.GetLastWriteTimeUtc(api.Options.ModelPath!)).ToUnixTimeSeconds());
        json.WriteString("owned_by", api.Simulated ? "gpufleet-simulated" : "gpufleet");
        if (api.TryGetStatus() is { ContextPerRequest: > 0 } status)
        {
            // The most tokens (prompt and completion) one request can hold, under the names clients read it from:
            // max_model_len (vLLM) and context_length (OpenRouter, LiteLLM).
            json.WriteNumber("max_model_len", status.ContextPerRequest);
            json.WriteNumber("context_length", status.ContextPerRequest);
        }

        json.WriteEndObject();
    }
}
