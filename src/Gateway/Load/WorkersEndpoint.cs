using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Load;

/// <summary><c>GET /workers</c>: the gateway's load view, one entry per worker, for operators and scripts.</summary>
internal static class WorkersEndpoint
{
    public static Task WriteAsync(HttpContext http, WorkerLoadBoard board)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var load in board.All.OrderBy(l => l.Destination, StringComparer.Ordinal))
            {
                json.WriteStartObject();
                json.WriteString("destination", load.Destination);
                json.WriteString("name", load.Status?.Name);
                json.WriteBoolean("connected", load.Connected);
                json.WriteBoolean("stale", board.IsStale(load));
                json.WriteBoolean("ready", load.Status?.Ready ?? false);
                json.WriteBoolean("draining", load.Status?.Draining ?? false);
                json.WriteBoolean("available", board.IsAvailable(load.Destination));
                if (load.Status?.Engine is { } engine)
                {
                    json.WriteNumber("queue_depth", engine.QueueDepth);
                    json.WriteNumber("running_slots", engine.RunningSlots);
                    json.WriteNumber("free_slots", engine.FreeSlots);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        http.Response.ContentType = "application/json";
        return http.Response.Body.WriteAsync(buffer.ToArray(), http.RequestAborted).AsTask();
    }
}
