using System.Text.Json;
using GpuFleet.Gateway.Tests.Destinations;
using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Gateway.Tests.Observability;

/// <summary>
/// The gateway's live fleet page over two simulated workers: <c>/fleet.json</c> adds up, and <c>/fleet</c> renders in
/// headless Chromium from it (a screenshot is kept in artifacts/test-results/fleet-page.png).
/// </summary>
public sealed class FleetPageTests(FleetPageTests.Fleet fleet) : IClassFixture<FleetPageTests.Fleet>, IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TestTimeouts.Default };
    private readonly IReadOnlyList<WorkerProcess> _workers = fleet.Workers;
    private readonly GatewayProcess _gateway = fleet.Gateway;

    [Fact]
    public async Task Fleet_json_lists_every_worker_and_the_fleet_totals_are_their_sums()
    {
        using var json = JsonDocument.Parse(await _http.GetStringAsync(new Uri(_gateway.BaseAddress, "/fleet.json")));
        var workers = json.RootElement.GetProperty("workers").EnumerateArray().ToList();
        var fleet = json.RootElement.GetProperty("fleet");
        Assert.Equal(["w0", "w1"], workers.Select(w => w.GetProperty("name").GetString()));
        Assert.All(workers, w => Assert.Equal("available", w.GetProperty("state").GetString()));
        Assert.Equal(2, fleet.GetProperty("available").GetInt32());
        Assert.Equal(8, fleet.GetProperty("total_slots").GetInt32());
        Assert.Equal(workers.Sum(w => w.GetProperty("total_slots").GetInt32()), fleet.GetProperty("total_slots").GetInt32());
        Assert.Equal(workers.Sum(w => w.GetProperty("queue_depth").GetInt32()), fleet.GetProperty("queued").GetInt32());
        // Headroom: at least the free slots, never more than slots + queue.
        foreach (var w in workers)
        {
            var headroom = w.GetProperty("headroom_sessions").GetDouble();
            var slots = w.GetProperty("total_slots").GetInt32();
            Assert.InRange(headroom, slots - w.GetProperty("running_slots").GetInt32() - w.GetProperty("queue_depth").GetInt32(), slots + w.GetProperty("queue_capacity").GetInt32());
        }

        // Each figure is rounded down from its exact value, the fleet's from the exact sum: it is the workers' sum plus
        // less than one per worker (from a measured request time, headroom is fractional).
        var sum = workers.Sum(w => w.GetProperty("headroom_sessions").GetDouble());
        Assert.InRange(fleet.GetProperty("headroom_sessions").GetDouble(), sum, sum + workers.Count - 1);
    }

    [Fact]
    public async Task The_fleet_page_renders_every_worker_in_headless_chromium_and_loads_nothing_from_elsewhere()
    {
        var page = new Uri(_gateway.BaseAddress, "/fleet");
        var html = await _http.GetStringAsync(page);
        Assert.DoesNotContain("http://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("https://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<link", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("src=", html, StringComparison.OrdinalIgnoreCase);

        var dom = await HeadlessChromium.DumpDomAsync(page, TimeSpan.FromSeconds(5));
        Assert.Contains("data-worker=\"" + _workers[0].BaseAddress.Authority + "\"", dom, StringComparison.Ordinal);
        Assert.Contains("data-worker=\"" + _workers[1].BaseAddress.Authority + "\"", dom, StringComparison.Ordinal);
        Assert.Contains("<td class=\"state available\">available</td>", dom, StringComparison.Ordinal);
        Assert.Contains("<div class=\"v\" id=\"available\">2 / 2</div>", dom, StringComparison.Ordinal);
        Assert.Contains("<div id=\"error\"></div>", dom, StringComparison.Ordinal);

        var screenshot = RepositoryPaths.Of("artifacts", "test-results", "fleet-page.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        File.Delete(screenshot);
        await HeadlessChromium.ScreenshotAsync(page, TimeSpan.FromSeconds(5), screenshot);
        Assert.True(new FileInfo(screenshot).Length > 10_000, "the screenshot is too small to show the page");
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Two simulated workers of four slots that have served a few requests; the tests only read.</summary>
    public sealed class Fleet() : GatewayFleet("tiny-qwen35", DemoArchitecture.Qwen35, 2, "--simulate", "--slots", "4", "--ctx-size", "4096")
    {
        protected override async Task WarmUpAsync(HttpClient http)
        {
            for (var i = 0; i < 4; i++)
            {
                await Gateway.ChatAsync(http);
            }
        }
    }
}
