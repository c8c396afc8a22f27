using GpuFleet.Gateway.Routing;

namespace GpuFleet.Gateway.Tests.Routing.Unit;

/// <summary>Routing options are validated at start, every bad value named by its key.</summary>
public sealed class RoutingOptionsTests
{
    [Fact]
    public void The_defaults_are_valid()
    {
        Assert.Empty(new RoutingOptions().Validate());
        Assert.Empty(new RoutingOptions { SpreadTolerance = TimeSpan.Zero, SpreadToleranceRatio = 0, ContextFitMargin = 1 }.Validate());
    }

    [Fact]
    public void Bad_spread_and_context_fit_options_are_all_reported()
    {
        var errors = new RoutingOptions { SpreadTolerance = TimeSpan.FromSeconds(-1), SpreadToleranceRatio = 2, ContextFitMargin = 0.8 }.Validate();
        Assert.Equal(3, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routing:SpreadTolerance ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routing:SpreadToleranceRatio", StringComparison.Ordinal) && e.Contains('2', StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routing:ContextFitMargin", StringComparison.Ordinal) && e.Contains("0.8", StringComparison.Ordinal));
        Assert.NotEmpty(new RoutingOptions { ContextFitMargin = double.NaN }.Validate());
    }
}
