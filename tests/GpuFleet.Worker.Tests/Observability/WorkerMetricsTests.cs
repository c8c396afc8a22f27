using System.Text;
using GpuFleet.Testing;
using GpuFleet.Worker.Tests.Api;

namespace GpuFleet.Worker.Tests.Observability;

/// <summary>The worker's capacity-planning metrics on a real worker after real requests: engine histograms, memory, load time.</summary>
public sealed class WorkerMetricsTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    [Fact]
    public async Task After_requests_the_engine_histograms_memory_and_load_time_are_exported_and_promtool_accepts_them()
    {
        using var http = new HttpClient { BaseAddress = fixture.Worker.BaseAddress, Timeout = TestTimeouts.Default };
        for (var i = 0; i < 2; i++)
        {
            using var response = await http.PostAsync(new Uri("/v1/completions", UriKind.Relative), new StringContent(
                $$"""{"model":"{{fixture.ModelId}}","prompt":"count the steps {{i}}","max_tokens":4}""", Encoding.UTF8, "application/json"));
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }

        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var metrics = PrometheusSamples.Parse(text);
        var identity = new[] { ("worker", "api-test"), ("model", fixture.ModelId) };

        // One queue wait per admitted request; steps that decoded, and the batch sizes they had.
        var completed = metrics.Single("gpufleet_worker_requests_total", [.. identity, ("outcome", "completed")]);
        Assert.Equal(completed, metrics.Single("gpufleet_worker_queue_wait_seconds_count"));
        var steps = metrics.Single("gpufleet_worker_step_duration_seconds_count");
        Assert.True(steps >= 2 * 4, $"{steps} steps for two requests of 4 tokens");
        Assert.Equal(steps, metrics.Single("gpufleet_worker_decode_batch_size_count"));
        Assert.Equal(steps, metrics.Sum("gpufleet_worker_steps_total"));
        Assert.Equal(steps, metrics.Single("gpufleet_worker_step_duration_seconds_bucket", ("le", "+Inf")));
        // Decode steps generate every token but each request's first (sampled after its prefill).
        var generated = metrics.Single("gpufleet_worker_generated_tokens_total", identity);
        Assert.Equal(generated - completed, metrics.Single("gpufleet_worker_decode_batch_size_sum"));
        // Prefilled = prompt tokens not served from the cache.
        Assert.Equal(
            metrics.Single("gpufleet_worker_prompt_tokens_total", identity) - metrics.Single("gpufleet_worker_reused_prompt_tokens_total", identity),
            metrics.Single("gpufleet_worker_prefilled_tokens_total"));

        Assert.True(metrics.Single("gpufleet_worker_kv_tokens", [.. identity, ("kind", "total")]) > 0);
        Assert.Equal(0, metrics.Single("gpufleet_worker_kv_tokens", [.. identity, ("kind", "reserved")]));
        Assert.Equal(4096, metrics.Single("gpufleet_worker_context_tokens", identity));
        Assert.True(metrics.Single("gpufleet_worker_model_load_seconds", identity) > 0);
        // The CPU device is always there; its total is the host's memory.
        Assert.True(metrics.Single("gpufleet_worker_device_memory_bytes", [.. identity, ("type", "CPU"), ("kind", "total")]) > 0);
        Assert.True(metrics.Single("gpufleet_worker_host_cache_capacity_bytes", identity) >= 0);

        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);
        Assert.True(exitCode == 0, output);
    }
}
