using System.Reflection;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Gateway.Tests;

/// <summary>Each log event of a process has its own id, so a log query by id finds one kind of event.</summary>
public sealed class LogEventIdTests
{
    [Theory]
    [InlineData(typeof(GpuFleet.Gateway.Routing.TimeToFirstTokenPolicy))]
    [InlineData(typeof(GpuFleet.Worker.Engine.InferenceEngine))]
    public void Every_log_event_id_in_the_assembly_is_unique(Type inAssembly)
    {
        var events = inAssembly.Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(e => e.Attribute is not null)
            .ToList();

        Assert.True(events.Count >= 10, $"{events.Count} log events found");
        var duplicates = events.GroupBy(e => e.Attribute!.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.Method.DeclaringType!.Name + "." + e.Method.Name))}").ToList();
        Assert.True(duplicates.Count == 0, "duplicate EventIds: " + string.Join("; ", duplicates));
    }
}
