using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace GpuFleet.Contracts.Redis;

/// <summary>The RESP2 type of a reply.</summary>
public enum RedisResultKind
{
    SimpleString,
    Error,
    Integer,
    BulkString,
    Array,
}

/// <summary>One RESP2 reply: a simple string, an error, an integer, a bulk string or an array of replies (both may be null).</summary>
/// <remarks>
/// A struct so that integer and status replies (most of what the gateway sends) cost no allocation beyond their
/// payload. Error replies are values, not exceptions: the caller decides (<see cref="EnsureSuccess"/> throws).
/// </remarks>
public readonly struct RedisResult : IEquatable<RedisResult>
{
    // string for simple strings and errors, byte[] for bulk strings, RedisResult[] for arrays; null for the RESP nulls.
    private readonly object? _value;
    private readonly long _integer;

    private RedisResult(RedisResultKind kind, object? value, long integer)
    {
        Kind = kind;
        _value = value;
        _integer = integer;
    }

    public RedisResultKind Kind { get; }

    /// <summary>True for the null bulk string (<c>$-1</c>) and the null array (<c>*-1</c>).</summary>
    public bool IsNull => _value is null && Kind is RedisResultKind.BulkString or RedisResultKind.Array;

    public bool IsError => Kind == RedisResultKind.Error;

    /// <summary>The error reply's text (e.g. <c>NOSCRIPT No matching script.</c>), or null when this is no error.</summary>
    public string? ErrorMessage => IsError ? (string?)_value : null;

    public static RedisResult SimpleString(string value) => new(RedisResultKind.SimpleString, value, 0);

    public static RedisResult Error(string message) => new(RedisResultKind.Error, message, 0);

    public static RedisResult Integer(long value) => new(RedisResultKind.Integer, null, value);

    public static RedisResult BulkString(byte[]? value) => new(RedisResultKind.BulkString, value, 0);

    public static RedisResult Array(RedisResult[]? items) => new(RedisResultKind.Array, items, 0);

    /// <summary>The text of a simple string, error, bulk string (UTF-8) or integer; null for a null bulk string.</summary>
    public string? AsString() => Kind switch
    {
        RedisResultKind.SimpleString or RedisResultKind.Error => (string?)_value,
        RedisResultKind.Integer => _integer.ToString(CultureInfo.InvariantCulture),
        RedisResultKind.BulkString => _value is byte[] bytes ? Encoding.UTF8.GetString(bytes) : null,
        _ => throw new InvalidOperationException("An array reply has no string value."),
    };

    /// <summary>The bytes of a bulk string; null for a null bulk string.</summary>
    public byte[]? AsBytes() => Kind == RedisResultKind.BulkString
        ? (byte[]?)_value
        : throw new InvalidOperationException($"A {Kind} reply is not a bulk string.");

    /// <summary>An integer reply, or a bulk/simple string holding an integer (GET of a counter).</summary>
    public long AsLong()
    {
        switch (Kind)
        {
            case RedisResultKind.Integer:
                return _integer;
            case RedisResultKind.BulkString when _value is byte[] bytes && Utf8Parser.TryParse(bytes, out long parsed, out var used) && used == bytes.Length:
                return parsed;
            case RedisResultKind.SimpleString when long.TryParse((string?)_value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number):
                return number;
            default:
                throw new InvalidOperationException(IsError ? $"Redis error: {ErrorMessage}" : $"A {Kind} reply{(IsNull ? " (null)" : "")} is not an integer.");
        }
    }

    /// <summary>The items of an array reply; null for a null array.</summary>
    public IReadOnlyList<RedisResult>? AsArray() => Kind == RedisResultKind.Array
        ? (RedisResult[]?)_value
        : throw new InvalidOperationException(IsError ? $"Redis error: {ErrorMessage}" : $"A {Kind} reply is not an array.");

    /// <summary>This reply, or a <see cref="RedisServerException"/> when it is an error reply.</summary>
    public RedisResult EnsureSuccess() => IsError ? throw new RedisServerException(ErrorMessage!) : this;

    public bool Equals(RedisResult other)
    {
        if (Kind != other.Kind || _integer != other._integer)
        {
            return false;
        }

        return (_value, other._value) switch
        {
            (null, null) => true,
            (string a, string b) => a == b,
            (byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b),
            (RedisResult[] a, RedisResult[] b) => a.AsSpan().SequenceEqual(b),
            _ => false,
        };
    }

    public override bool Equals(object? obj) => obj is RedisResult other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Kind, _integer, _value is string s ? s.GetHashCode(StringComparison.Ordinal) : 0);

    public static bool operator ==(RedisResult left, RedisResult right) => left.Equals(right);

    public static bool operator !=(RedisResult left, RedisResult right) => !left.Equals(right);

    /// <summary>Kind and size only: values may be keys or payloads, which must not reach logs.</summary>
    public override string ToString() => _value switch
    {
        _ when IsNull => $"{Kind}(null)",
        byte[] bytes => $"{Kind}({bytes.Length} bytes)",
        RedisResult[] items => $"{Kind}({items.Length} items)",
        _ when Kind == RedisResultKind.Integer => $"Integer({_integer})",
        _ => Kind.ToString(),
    };
}
