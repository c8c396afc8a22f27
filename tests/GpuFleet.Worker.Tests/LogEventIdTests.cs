using System.Reflection;
using Microsoft.Extensions.Logging;

namespace GpuFleet.Worker.Tests;

/// <summary>Each log event of the worker process has its own id and name, so a log query by either finds one kind of event.</summary>
public sealed class LogEventIdTests
{
    private static readonly List<(MethodInfo Method, LoggerMessageAttribute Attribute)> Events =
        [.. typeof(GpuFleet.Worker.Engine.InferenceEngine).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()!))
            .Where(e => e.Attribute is not null)];

    [Fact]
    public void Every_log_event_id_in_the_worker_is_unique()
    {
        // The worker logs from the engine, llama.cpp's callback, hosting, the registry and the API: well over ten events.
        Assert.True(Events.Count >= 10, $"{Events.Count} log events found");
        Assert.Empty(Duplicates(e => e.Attribute.EventId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void Every_log_event_has_a_unique_explicit_name()
    {
        Assert.Empty(Events.Where(e => string.IsNullOrEmpty(e.Attribute.EventName)).Select(Describe));
        Assert.Empty(Duplicates(e => e.Attribute.EventName!));
    }

    private static List<string> Duplicates(Func<(MethodInfo Method, LoggerMessageAttribute Attribute), string> key) =>
        [.. Events.GroupBy(key).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(Describe))}")];

    private static string Describe((MethodInfo Method, LoggerMessageAttribute Attribute) e) => e.Method.DeclaringType!.Name + "." + e.Method.Name;
}
