using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace GpuFleet.Contracts.Redis;

/// <summary>One argument of a command: text (sent as UTF-8), bytes, or an integer (sent as its decimal text).</summary>
public readonly struct RedisArgument : IEquatable<RedisArgument>
{
    private readonly string? _text;
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly long _integer;
    private readonly Form _form;

    private RedisArgument(string? text, ReadOnlyMemory<byte> bytes, long integer, Form form)
    {
        _text = text;
        _bytes = bytes;
        _integer = integer;
        _form = form;
    }

    private enum Form : byte
    {
        Text,
        Bytes,
        Integer,
    }

    /// <summary>Text sent as UTF-8; null is sent as the empty string.</summary>
    public static RedisArgument FromString(string? value) => new(value ?? "", default, 0, Form.Text);

    public static RedisArgument FromBytes(ReadOnlyMemory<byte> value) => new(null, value, 0, Form.Bytes);

    public static RedisArgument FromInt64(long value) => new(null, default, value, Form.Integer);

    public static implicit operator RedisArgument(string? value) => FromString(value);

    public static implicit operator RedisArgument(long value) => FromInt64(value);

    public static implicit operator RedisArgument(int value) => FromInt64(value);

    public static implicit operator RedisArgument(byte[] value) => FromBytes(value);

    public static implicit operator RedisArgument(ReadOnlyMemory<byte> value) => FromBytes(value);

    internal void WriteTo(IBufferWriter<byte> output)
    {
        switch (_form)
        {
            case Form.Text:
                RespWriter.WriteBulkString(output, _text ?? "");
                break;
            case Form.Bytes:
                RespWriter.WriteBulkString(output, _bytes.Span);
                break;
            default:
                Span<byte> digits = stackalloc byte[20];
                Utf8Formatter.TryFormat(_integer, digits, out var length);
                RespWriter.WriteBulkString(output, digits[..length]);
                break;
        }
    }

    public bool Equals(RedisArgument other) => _form == other._form && _form switch
    {
        Form.Text => _text == other._text,
        Form.Bytes => _bytes.Span.SequenceEqual(other._bytes.Span),
        _ => _integer == other._integer,
    };

    public override bool Equals(object? obj) => obj is RedisArgument other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_form, _integer, _text is null ? 0 : _text.GetHashCode(StringComparison.Ordinal));

    public static bool operator ==(RedisArgument left, RedisArgument right) => left.Equals(right);

    public static bool operator !=(RedisArgument left, RedisArgument right) => !left.Equals(right);

    /// <summary>Form and size only: arguments are keys and payloads, which must not reach logs.</summary>
    public override string ToString() => _form switch
    {
        Form.Text => $"Text({Encoding.UTF8.GetByteCount(_text ?? "")} bytes)",
        Form.Bytes => $"Bytes({_bytes.Length} bytes)",
        _ => _integer.ToString(CultureInfo.InvariantCulture),
    };
}

/// <summary>A command name and its arguments, as sent in an array of bulk strings.</summary>
public readonly struct RedisCommand : IEquatable<RedisCommand>
{
    private readonly RedisArgument[]? _args;

    public RedisCommand(string name, params RedisArgument[] args)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        _args = args;
    }

    /// <summary>The command (e.g. <c>GET</c>); safe to log, unlike the arguments.</summary>
    public string Name { get; }

    public ReadOnlySpan<RedisArgument> Args => _args;

    public bool Equals(RedisCommand other) => Name == other.Name && Args.SequenceEqual(other.Args);

    public override bool Equals(object? obj) => obj is RedisCommand other && Equals(other);

    public override int GetHashCode() => Name?.GetHashCode(StringComparison.Ordinal) ?? 0;

    public static bool operator ==(RedisCommand left, RedisCommand right) => left.Equals(right);

    public static bool operator !=(RedisCommand left, RedisCommand right) => !left.Equals(right);

    public override string ToString() => $"{Name} ({Args.Length} arguments)";
}
