using System.Text.Json;
using GpuFleet.Gateway.Load;
using GpuFleet.Gateway.Routing;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Gateway.Observability;

/// <summary>
/// <c>GET /fleet</c>: a self-contained page (inline CSS and script, no external fonts or scripts, so it works offline)
/// that shows every worker's state, queue, slots, KV use, cache hits and tokens/s and the fleet's headroom, refreshed
/// from <c>GET /fleet.json</c> every two seconds: what a person looks at before Grafana is set up.
/// </summary>
internal static class FleetPage
{
    public static Task WriteJsonAsync(HttpContext http, WorkerLoadBoard board, WorkerTraffic traffic, TimeProvider time)
    {
        var view = FleetView.From(board, traffic, time);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("generated_at", view.GeneratedAt);
            json.WriteNumber("ttft_objective_seconds", view.ObjectiveSeconds);
            json.WriteStartObject("fleet");
            json.WriteNumber("workers", view.Workers.Count);
            json.WriteNumber("available", view.Available);
            json.WriteNumber("running_slots", view.RunningSlots);
            json.WriteNumber("total_slots", view.TotalSlots);
            json.WriteNumber("queued", view.Queued);
            json.WriteNumber("decode_tokens_per_second", Math.Round(view.DecodeTokensPerSecond, 2));
            json.WriteNumber("prefill_tokens_per_second", Math.Round(view.PrefillTokensPerSecond, 2));
            json.WriteNumber("headroom_sessions", Math.Floor(view.HeadroomSessions));
            json.WriteNumber("sessions_per_added_worker", Math.Floor(view.SessionsPerAddedWorker));
            json.WriteEndObject();
            json.WriteStartArray("workers");
            foreach (var w in view.Workers)
            {
                json.WriteStartObject();
                json.WriteString("destination", w.Destination);
                json.WriteString("name", w.Name);
                json.WriteString("model", w.Model);
                json.WriteString("state", w.State);
                json.WriteNumber("queue_depth", w.QueueDepth);
                json.WriteNumber("queue_capacity", w.QueueCapacity);
                json.WriteNumber("running_slots", w.RunningSlots);
                json.WriteNumber("total_slots", w.TotalSlots);
                json.WriteNumber("kv_bytes_used", w.KvBytesUsed);
                json.WriteNumber("kv_bytes_total", w.KvBytesTotal);
                json.WriteNumber("cache_hit_ratio", Math.Round(w.CacheHitRatio, 4));
                json.WriteNumber("prefill_tokens_per_second", Math.Round(w.PrefillTokensPerSecond, 2));
                json.WriteNumber("decode_tokens_per_second", Math.Round(w.DecodeTokensPerSecond, 2));
                if (w.MeanRequestSeconds is { } mean)
                {
                    json.WriteNumber("mean_request_seconds", Math.Round(mean, 3));
                }
                else
                {
                    json.WriteNull("mean_request_seconds");
                }

                json.WriteNumber("session_capacity", Math.Floor(w.SessionCapacity));
                json.WriteNumber("headroom_sessions", Math.Floor(w.HeadroomSessions));
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        http.Response.ContentType = "application/json";
        http.Response.Headers.CacheControl = "no-store";
        return http.Response.Body.WriteAsync(buffer.ToArray(), http.RequestAborted).AsTask();
    }

    public static Task WriteHtmlAsync(HttpContext http)
    {
        http.Response.ContentType = "text/html; charset=utf-8";
        http.Response.Headers.CacheControl = "no-store";
        // Nothing but this page's own inline style and script may run or load.
        http.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'";
        return http.Response.WriteAsync(Html, http.RequestAborted);
    }

    private const string Html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>GpuFleet - fleet</title>
        <style>
        :root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --text: #1d2330; --muted: #667085; --line: #e4e7ec; --ok: #12805c; --warn: #b54708; --bad: #b42318; --bar: #3e63dd; }
        @media (prefers-color-scheme: dark) { :root { --bg: #111418; --card: #1a1f26; --text: #e6e9ee; --muted: #98a2b3; --line: #2b323c; --bar: #7c9cff; } }
        * { box-sizing: border-box; }
        body { margin: 0; padding: 24px; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
        h1 { font-size: 20px; margin: 0 0 4px; }
        .sub { color: var(--muted); margin-bottom: 20px; }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 20px; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
        .card .v { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
        .card .k { color: var(--muted); font-size: 12px; }
        table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
        th, td { padding: 8px 10px; text-align: left; border-bottom: 1px solid var(--line); font-variant-numeric: tabular-nums; white-space: nowrap; }
        th { color: var(--muted); font-weight: 500; font-size: 12px; }
        tr:last-child td { border-bottom: 0; }
        .state { font-weight: 600; }
        .available { color: var(--ok); } .draining, .loading { color: var(--warn); } .stale, .disconnected { color: var(--bad); }
        .bar { display: inline-block; width: 70px; height: 8px; border-radius: 4px; background: var(--line); vertical-align: middle; margin-right: 6px; overflow: hidden; }
        .bar > span { display: block; height: 100%; background: var(--bar); }
        .muted { color: var(--muted); }
        #error { color: var(--bad); margin-top: 12px; }
        </style>
        </head>
        <body>
        <h1>GpuFleet fleet</h1>
        <div class="sub">This gateway's live view of every worker, refreshed every 2 s. <span id="updated" class="muted"></span></div>
        <div class="cards">
          <div class="card"><div class="v" id="headroom">-</div><div class="k">more sessions within the <span id="objective">10</span> s first-token objective</div></div>
          <div class="card"><div class="v" id="perworker">-</div><div class="k">sessions one more worker adds</div></div>
          <div class="card"><div class="v" id="available">-</div><div class="k">workers available</div></div>
          <div class="card"><div class="v" id="slots">-</div><div class="k">slots running / total</div></div>
          <div class="card"><div class="v" id="queued">-</div><div class="k">requests queued</div></div>
          <div class="card"><div class="v" id="tps">-</div><div class="k">tokens/s generated (prefill)</div></div>
        </div>
        <table>
          <thead><tr><th>Worker</th><th>Model</th><th>State</th><th>Queue</th><th>Slots</th><th>KV use</th><th>Cache hits</th><th>Tokens/s (prefill)</th><th>Headroom</th></tr></thead>
          <tbody id="workers"><tr><td colspan="9" class="muted">Loading...</td></tr></tbody>
        </table>
        <div id="error"></div>
        <script>
        "use strict";
        const $ = id => document.getElementById(id);
        const pct = x => (100 * x).toFixed(0) + "%";
        const num = x => x >= 100 ? x.toFixed(0) : x.toFixed(1);
        const bytes = b => { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; } return b.toFixed(i ? 1 : 0) + " " + u[i]; };
        function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
        function bar(ratio, label) {
          const td = document.createElement("td"), b = document.createElement("span"), fill = document.createElement("span");
          b.className = "bar"; fill.style.width = Math.min(100, Math.max(0, 100 * ratio)).toFixed(0) + "%"; b.appendChild(fill);
          td.appendChild(b); td.appendChild(document.createTextNode(label)); return td;
        }
        function render(data) {
          const f = data.fleet;
          $("objective").textContent = data.ttft_objective_seconds;
          $("headroom").textContent = f.headroom_sessions;
          $("perworker").textContent = f.sessions_per_added_worker;
          $("available").textContent = f.available + " / " + f.workers;
          $("slots").textContent = f.running_slots + " / " + f.total_slots;
          $("queued").textContent = f.queued;
          $("tps").textContent = num(f.decode_tokens_per_second) + " (" + num(f.prefill_tokens_per_second) + ")";
          const rows = data.workers.map(w => {
            const tr = document.createElement("tr");
            tr.dataset.worker = w.destination;
            tr.appendChild(cell(w.name || w.destination));
            tr.appendChild(cell(w.model || "-", "muted"));
            tr.appendChild(cell(w.state, "state " + w.state));
            tr.appendChild(bar(w.queue_capacity ? w.queue_depth / w.queue_capacity : 0, w.queue_depth + " / " + w.queue_capacity));
            tr.appendChild(bar(w.total_slots ? w.running_slots / w.total_slots : 0, w.running_slots + " / " + w.total_slots));
            tr.appendChild(bar(w.kv_bytes_total ? w.kv_bytes_used / w.kv_bytes_total : 0, bytes(w.kv_bytes_used) + " / " + bytes(w.kv_bytes_total)));
            tr.appendChild(cell(pct(w.cache_hit_ratio)));
            tr.appendChild(cell(num(w.decode_tokens_per_second) + " (" + num(w.prefill_tokens_per_second) + ")"));
            tr.appendChild(cell(w.headroom_sessions + " of " + w.session_capacity));
            return tr;
          });
          if (rows.length === 0) { const tr = document.createElement("tr"); tr.appendChild(cell("No workers known to this gateway.", "muted")).colSpan = 9; rows.push(tr); }
          $("workers").replaceChildren(...rows);
          $("updated").textContent = "Updated " + new Date(data.generated_at).toLocaleTimeString() + ".";
          $("error").textContent = "";
        }
        async function refresh() {
          try {
            const response = await fetch("fleet.json", { cache: "no-store" });
            if (!response.ok) throw new Error("fleet.json answered " + response.status);
            render(await response.json());
          } catch (e) {
            $("error").textContent = "Cannot refresh: " + e.message;
          }
        }
        refresh();
        setInterval(refresh, 2000);
        </script>
        </body>
        </html>
        """;
}
