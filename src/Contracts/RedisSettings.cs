using System.Globalization;
using StackExchange.Redis;

namespace GpuFleet.Contracts;

/// <summary>
/// Reads a Redis setting (the gateway's <c>Redis:Configuration</c>, the worker's <c>Worker:Redis</c>; <c>--redis</c> sets
/// either), a StackExchange.Redis configuration string (<c>host:port,password=...,ssl=true,host2:port2,serviceName=...</c>),
/// and applies GpuFleet's defaults where the string leaves them unset.
/// </summary>
/// <remarks>
/// The defaults make an outage a fallback, never a client error or a stall: connect in the background
/// (<c>abortConnect=false</c>), fail commands at once while disconnected (<see cref="BacklogPolicy.FailFast"/>, which a
/// string cannot set), connect within 5 s and answer within 1 s.
/// </remarks>
public static class RedisSettings
{
    /// <summary>The gateway's configuration key; <c>--redis</c> sets it.</summary>
    public const string GatewayKey = "Redis:Configuration";

    /// <summary>The worker's configuration key (its registry heartbeat); <c>--redis</c> sets it.</summary>
    public const string WorkerKey = "Worker:Redis";

    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    public static readonly TimeSpan DefaultCommandTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Parses <paramref name="text"/>; on failure null and every problem in <paramref name="errors"/>, each naming
    /// <paramref name="key"/> and none repeating the string (it may hold a password).
    /// </summary>
    public static ConfigurationOptions? Parse(string text, string key, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(text);
        }
        catch (ArgumentException ex)
        {
            // The library's message names the offending keyword (and a bad number's value), never the password.
            errors.Add($"{key} is not a valid StackExchange.Redis configuration string: {ex.Message}");
            return null;
        }

        if (options.EndPoints.Count == 0)
        {
            errors.Add($"{key} names no Redis endpoint: give host:port (several separated by commas), e.g. redis:6379,password=...");
            return null;
        }

        // The gateway and the workers start while Redis is down and connect later; a first connect that gave up would never retry.
        if (Sets(text, "abortConnect") && options.AbortOnConnectFail)
        {
            errors.Add($"{key} sets abortConnect=true: the gateway and workers must start while Redis is down, so remove it (abortConnect=false is the default here).");
            return null;
        }

        options.AbortOnConnectFail = false;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        if (!Sets(text, "connectTimeout"))
        {
            options.ConnectTimeout = (int)DefaultConnectTimeout.TotalMilliseconds;
        }

        if (!Sets(text, "syncTimeout"))
        {
            options.SyncTimeout = (int)DefaultCommandTimeout.TotalMilliseconds;
        }

        if (!Sets(text, "asyncTimeout"))
        {
            options.AsyncTimeout = Sets(text, "syncTimeout") ? options.SyncTimeout : (int)DefaultCommandTimeout.TotalMilliseconds;
        }

        return options;
    }

    /// <summary>The endpoints (and Sentinel service), for logs: never the password or other settings.</summary>
    public static string Describe(ConfigurationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoints = string.Join(",", options.EndPoints.Select(EndPointCollection.ToString));
        return options.ServiceName is { Length: > 0 } service
            ? string.Create(CultureInfo.InvariantCulture, $"{endpoints} (service {service})")
            : endpoints;
    }

    // Whether the string sets an option itself, so that only unset ones get our defaults (keywords are case-insensitive).
    private static bool Sets(string text, string option) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Any(part => part.StartsWith(option + "=", StringComparison.OrdinalIgnoreCase));
}
