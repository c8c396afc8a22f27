using System.Globalization;
using System.Net;
using System.Text;

namespace GpuFleet.Contracts.Grpc.Internal;

/// <summary>Names and encodings of the gRPC-over-HTTP/2 protocol (grpc/grpc doc/PROTOCOL-HTTP2.md).</summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";
    public const string IdentityEncoding = "identity";

    /// <summary>The 5-byte prefix of every message: a compressed flag byte and a big-endian uint32 length.</summary>
    public const int MessagePrefixSize = 5;

    /// <summary>grpc-timeout carries at most 8 digits.</summary>
    private const long MaxTimeoutValue = 99_999_999;

    /// <summary>
    /// The longest delay a <see cref="CancellationTokenSource"/> timer accepts; a longer grpc-timeout (the header
    /// allows 99,999,999 hours) is treated as no deadline, which is what it means in practice.
    /// </summary>
    public static readonly TimeSpan MaxTimerDelay = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>application/grpc, application/grpc+proto, or either with parameters; the match is case-insensitive.</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType) || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var rest = contentType.AsSpan(ContentType.Length);
        if (rest.IsEmpty || rest[0] == ';')
        {
            return true;
        }

        // "+proto" is the only subtype we can decode; "+json" and friends are another wire format.
        return rest.StartsWith("+proto", StringComparison.OrdinalIgnoreCase) && (rest.Length == 6 || rest[6] == ';');
    }

    /// <summary>Parses grpc-timeout (1-8 digits and a unit of H, M, S, m, u, n); false when malformed.</summary>
    public static bool TryParseTimeout(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (value is null || value.Length < 2 || value.Length > 9)
        {
            return false;
        }

        var digits = value.AsSpan(0, value.Length - 1);
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        var amount = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        var ticks = value[^1] switch
        {
            'H' => amount * TimeSpan.TicksPerHour,
            'M' => amount * TimeSpan.TicksPerMinute,
            'S' => amount * TimeSpan.TicksPerSecond,
            'm' => amount * TimeSpan.TicksPerMillisecond,
            'u' => amount * TimeSpan.TicksPerMicrosecond,
            'n' => amount / TimeSpan.NanosecondsPerTick,
            _ => -1L,
        };
        if (ticks < 0)
        {
            return false;
        }

        timeout = TimeSpan.FromTicks(ticks);
        return true;
    }

    /// <summary>Formats a positive timeout as grpc-timeout in the finest unit that fits 8 digits, rounding up so a deadline is never early.</summary>
    public static string FormatTimeout(TimeSpan timeout)
    {
        var ticks = Math.Max(timeout.Ticks, 1);
        ReadOnlySpan<(long TicksPerUnit, char Unit)> units =
        [
            (TimeSpan.TicksPerMicrosecond, 'u'),
            (TimeSpan.TicksPerMillisecond, 'm'),
            (TimeSpan.TicksPerSecond, 'S'),
            (TimeSpan.TicksPerMinute, 'M'),
            (TimeSpan.TicksPerHour, 'H'),
        ];
        foreach (var (ticksPerUnit, unit) in units)
        {
            var amount = (ticks + ticksPerUnit - 1) / ticksPerUnit;
            if (amount <= MaxTimeoutValue)
            {
                return amount.ToString(CultureInfo.InvariantCulture) + unit;
            }
        }

        return MaxTimeoutValue.ToString(CultureInfo.InvariantCulture) + "H";
    }

    /// <summary>
    /// Percent-encodes a status message for grpc-message: UTF-8 bytes outside 0x20-0x7E, and '%' itself, become %XX.
    /// Header values must be ASCII (Kestrel refuses others), and every gRPC implementation decodes this form.
    /// </summary>
    public static string EncodeMessage(string message)
    {
        var plain = true;
        foreach (var c in message)
        {
            if (c is < ' ' or > '~' or '%')
            {
                plain = false;
                break;
            }
        }

        if (plain)
        {
            return message;
        }

        var bytes = Encoding.UTF8.GetBytes(message);
        var builder = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            if (b is < 0x20 or > 0x7E or (byte)'%')
            {
                builder.Append('%').Append(HexUpper(b >> 4)).Append(HexUpper(b & 0xF));
            }
            else
            {
                builder.Append((char)b);
            }
        }

        return builder.ToString();
    }

    /// <summary>Decodes a percent-encoded grpc-message; a malformed escape is kept as is (the spec asks receivers not to fail).</summary>
    public static string DecodeMessage(string value)
    {
        if (!value.Contains('%', StringComparison.Ordinal))
        {
            return value;
        }

        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%' && i + 2 < value.Length && TryHex(value[i + 1], out var high) && TryHex(value[i + 2], out var low))
            {
                bytes.Add((byte)((high << 4) | low));
                i += 2;
            }
            else if (c <= 0x7F)
            {
                bytes.Add((byte)c);
            }
            else
            {
                // Not ASCII: the sender did not encode it; keep the character rather than lose it.
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The status a client infers from a non-200 HTTP response (grpc/grpc doc/http-grpc-status-mapping.md).</summary>
    public static GrpcStatusCode FromHttpStatus(HttpStatusCode status) => status switch
    {
        HttpStatusCode.BadRequest => GrpcStatusCode.Internal,
        HttpStatusCode.Unauthorized => GrpcStatusCode.Unauthenticated,
        HttpStatusCode.Forbidden => GrpcStatusCode.PermissionDenied,
        HttpStatusCode.NotFound => GrpcStatusCode.Unimplemented,
        HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable
            or HttpStatusCode.GatewayTimeout => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Unknown,
    };

    /// <summary>The status for an HTTP/2 RST_STREAM error code (PROTOCOL-HTTP2.md, "Errors").</summary>
    public static GrpcStatusCode FromHttp2ErrorCode(long errorCode) => errorCode switch
    {
        0x7 => GrpcStatusCode.Unavailable, // REFUSED_STREAM: never processed, safe to retry.
        0x8 => GrpcStatusCode.Cancelled, // CANCEL
        0xB => GrpcStatusCode.ResourceExhausted, // ENHANCE_YOUR_CALM
        0xC => GrpcStatusCode.PermissionDenied, // INADEQUATE_SECURITY
        _ => GrpcStatusCode.Internal,
    };

    /// <summary>Parses a grpc-status value; anything unparsable is UNKNOWN, as the spec asks.</summary>
    public static GrpcStatusCode ParseStatus(string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 16
            ? (GrpcStatusCode)code
            : GrpcStatusCode.Unknown;

    public static string FormatStatus(GrpcStatusCode code) => ((int)code).ToString(CultureInfo.InvariantCulture);

    private static char HexUpper(int nibble) => (char)(nibble < 10 ? '0' + nibble : 'A' + nibble - 10);

    private static bool TryHex(char c, out int value)
    {
        value = c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'A' and <= 'F' => c - 'A' + 10,
            >= 'a' and <= 'f' => c - 'a' + 10,
            _ => -1,
        };
        return value >= 0;
    }
}
