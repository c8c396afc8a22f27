using System.Globalization;

namespace GpuFleet.Contracts.Redis;

/// <summary>Where and how the gateway reaches Redis, bound from configuration section <c>Redis</c>.</summary>
public sealed class RedisOptions
{
    public const string SectionName = "Redis";

    /// <summary><c>host:port</c> (IPv6 as <c>[::1]:6379</c>); default <c>127.0.0.1:6379</c>.</summary>
    public string Endpoint { get; set; } = "127.0.0.1:6379";

    /// <summary>Sent with AUTH after each connect when set; never logged.</summary>
    public string? Password { get; set; }

    /// <summary>Database index chosen with SELECT after each connect; default 0.</summary>
    public int Database { get; set; }

    /// <summary>Limit on one connect attempt including AUTH/SELECT; default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Limit on one command from the call to its reply; default 1 s.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Cap of the exponential reconnect backoff; default 5 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Every problem with these settings, each naming its key (the password's value is never repeated).</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!TryParseEndpoint(Endpoint, out _, out _))
        {
            errors.Add($"{SectionName}:{nameof(Endpoint)} must be host:port with a port from 1 to 65535, not '{Endpoint}'.");
        }

        if (Password is { Length: 0 })
        {
            errors.Add($"{SectionName}:{nameof(Password)} is empty: leave it unset for a server without a password.");
        }

        if (Database < 0)
        {
            errors.Add($"{SectionName}:{nameof(Database)} must be 0 or more, not {Database}.");
        }

        CheckPositive(errors, nameof(ConnectTimeout), ConnectTimeout);
        CheckPositive(errors, nameof(CommandTimeout), CommandTimeout);
        CheckPositive(errors, nameof(MaxReconnectDelay), MaxReconnectDelay);
        return errors;
    }

    internal static bool TryParseEndpoint(string? endpoint, out string host, out int port)
    {
        host = "";
        port = 0;
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            return false;
        }

        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        host = endpoint[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            // An unbracketed IPv6 address is ambiguous with its port.
            return false;
        }

        return host.Length > 0 && !host.Any(char.IsWhiteSpace);
    }

    private static void CheckPositive(List<string> errors, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{SectionName}:{name} must be positive, not {value}.");
        }
    }
}
