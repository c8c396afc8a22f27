using GpuFleet.Testing;

namespace GpuFleet.Gateway.Tests.Observability;

/// <summary>The Prometheus rules in deploy/prometheus, checked and unit-tested by Prometheus' own promtool.</summary>
public sealed class PrometheusRulesTests
{
    [Fact]
    public async Task The_rule_files_pass_promtool_check_rules()
    {
        Assert.NotEmpty(ObservabilityFiles.RuleFiles);
        var (exitCode, output) = await Promtool.CheckRulesAsync([.. ObservabilityFiles.RuleFiles]);
        Assert.True(exitCode == 0, output);
    }

    [Fact]
    public async Task The_rules_unit_tests_pass_promtool_test_rules()
    {
        Assert.NotEmpty(ObservabilityFiles.RuleTestFiles);
        var (exitCode, output) = await Promtool.TestRulesAsync([.. ObservabilityFiles.RuleTestFiles]);
        Assert.True(exitCode == 0, output);
    }

    [Fact]
    public void Every_alert_has_a_summary_and_a_runbook_line()
    {
        var text = string.Join("\n", ObservabilityFiles.RuleFiles.Select(File.ReadAllText));
        var alerts = text.Split("- alert:").Skip(1).ToList();
        Assert.NotEmpty(alerts);
        Assert.All(alerts, alert =>
        {
            var name = alert.Split('\n')[0].Trim();
            Assert.True(alert.Contains("summary:", StringComparison.Ordinal), $"{name} has no summary");
            Assert.True(alert.Contains("runbook:", StringComparison.Ordinal), $"{name} has no runbook line");
        });
    }

    [Fact]
    public void The_expression_parser_finds_metric_names_and_skips_functions_labels_and_ranges()
    {
        var names = ObservabilityFiles.MetricNames(
            "sum by (worker, le) (rate(a_total{kind=\"used\",x=~\"$x\"}[$__rate_interval])) / on (worker) group_left b:c:d or vector(1) > bool 0 and c offset 1h");
        Assert.Equal(["a_total", "b:c:d", "c"], names.Order(StringComparer.Ordinal));
    }
}
