using System.Text.Json;

namespace GpuFleet.Gateway.Tests.Observability;

/// <summary>The Grafana dashboards' shape: a templated Prometheus data source everywhere, unique ids and titles, and queries.</summary>
public sealed class DashboardTests
{
    private static readonly string[] Expected = ["GpuFleet / Fleet capacity", "GpuFleet / Latency & SLO", "GpuFleet / Routing", "GpuFleet / Worker", "GpuFleet / Usage"];

    [Fact]
    public void The_five_dashboards_exist_with_unique_uids()
    {
        var dashboards = ObservabilityFiles.Dashboards();
        Assert.Equal(Expected.Order(StringComparer.Ordinal), dashboards.Select(d => d.Title).Order(StringComparer.Ordinal));
        Assert.Equal(dashboards.Count, dashboards.Select(d => d.Uid).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Every_panel_and_query_variable_uses_the_templated_prometheus_data_source()
    {
        foreach (var dashboard in ObservabilityFiles.Dashboards())
        {
            var source = Assert.Single(dashboard.Variables, v => v.Type == "datasource");
            Assert.Equal("datasource", source.Name);
            var sourceType = dashboard.Root.GetProperty("templating").GetProperty("list").EnumerateArray()
                .Single(v => v.GetProperty("type").GetString() == "datasource").GetProperty("query").GetString();
            Assert.Equal("prometheus", sourceType);
            foreach (var panel in ObservabilityFiles.Panels(dashboard.Root))
            {
                var title = panel.GetProperty("title").GetString();
                Assert.True(panel.GetProperty("datasource").GetProperty("uid").GetString() == "${datasource}", $"{dashboard.File}: {title}");
                Assert.NotEqual(0, panel.GetProperty("targets").GetArrayLength());
                foreach (var target in panel.GetProperty("targets").EnumerateArray())
                {
                    Assert.False(string.IsNullOrWhiteSpace(target.GetProperty("expr").GetString()), $"{dashboard.File}: {title}");
                    Assert.Equal("${datasource}", target.GetProperty("datasource").GetProperty("uid").GetString());
                }
            }

            foreach (var variable in dashboard.Root.GetProperty("templating").GetProperty("list").EnumerateArray().Where(v => v.GetProperty("type").GetString() == "query"))
            {
                Assert.Equal("${datasource}", variable.GetProperty("datasource").GetProperty("uid").GetString());
            }
        }
    }

    [Fact]
    public void Panel_ids_and_titles_are_unique_within_a_dashboard()
    {
        foreach (var dashboard in ObservabilityFiles.Dashboards())
        {
            var panels = ObservabilityFiles.Panels(dashboard.Root).ToList();
            Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
            Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("title").GetString()).Distinct(StringComparer.Ordinal).Count());
        }
    }

    [Fact]
    public void The_kubernetes_kustomization_lists_every_dashboard()
    {
        var kustomization = File.ReadAllText(Path.Combine(Path.GetDirectoryName(Testing.RepositoryPaths.Of("dashboards", "x"))!, "kustomization.yaml"));
        foreach (var dashboard in ObservabilityFiles.Dashboards())
        {
            Assert.Contains("- " + dashboard.File, kustomization, StringComparison.Ordinal);
        }
    }
}
