using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Unicode;

namespace GpuFleet.Contracts;

/// <summary>
/// The one check of an OpenAI request body's JSON that the gateway and the worker both make before reading any
/// field, so that every reading failure is one 400 decided in one linear pass, never an exception from a later read:
/// invalid UTF-8, malformed JSON, nesting deeper than <see cref="MaxDepth"/>, and escaped strings (values or property
/// names) that do not decode, such as a lone surrogate <c>"\ud800"</c>, which JSON's grammar allows but which is no
/// text (<see cref="JsonElement.GetString"/> throws on it).
/// </summary>
/// <remarks>
/// Decided here, for both processes: the Content-Type header is not consulted (curl's <c>-d</c> sends a form type
/// with a JSON body, and OpenAI serves it); a body that is not JSON is a 400 whatever its type. Duplicate property
/// names are accepted and the last one wins, as in <see cref="JsonDocument"/>'s lookups and in OpenAI's own parser.
/// </remarks>
public static class JsonRequestBody
{
    /// <summary>The deepest nesting accepted: far beyond any real request (tool schemas nest a few levels).</summary>
    public const int MaxDepth = 64;

    /// <summary>Null when <paramref name="utf8"/> is well-formed JSON whose every string decodes; else why not, for a 400.</summary>
    public static string? Problem(ReadOnlySpan<byte> utf8)
    {
        if (!Utf8.IsValid(utf8))
        {
            return "The request body is not valid UTF-8.";
        }

        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth });
        byte[]? unescaped = null;
        try
        {
            while (reader.Read())
            {
                // Unescaped strings are valid text once the whole body is valid UTF-8; only escapes can make a string
                // that is not, so only those are decoded (once, linear in their length), into one pooled buffer (never
                // longer than the escaped form) rather than a string each: agent prompts escape every newline.
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
                {
                    var escapedLength = reader.ValueSpan.Length; // one span: the reader never has a value sequence
                    if (unescaped is null || unescaped.Length < escapedLength)
                    {
                        if (unescaped is not null)
                        {
                            ArrayPool<byte>.Shared.Return(unescaped);
                        }

                        unescaped = ArrayPool<byte>.Shared.Rent(escapedLength);
                    }

                    reader.CopyString(unescaped);
                }
            }
        }
        catch (JsonException ex)
        {
            // The reader's own message may quote a whole bad token (a corrupted literal can run for megabytes): only
            // its start, with the position.
            return string.Create(CultureInfo.InvariantCulture,
                $"The request body is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}): {Quote(ex.Message, 200)}");
        }
        catch (InvalidOperationException)
        {
            return "The request body contains a string with an invalid escape (a lone UTF-16 surrogate such as \\ud800 is not text).";
        }
        finally
        {
            if (unescaped is not null)
            {
                ArrayPool<byte>.Shared.Return(unescaped);
            }
        }

        return null;
    }

    /// <summary>A client's value quoted in an error message: at most <paramref name="maxChars"/> characters, then an ellipsis.</summary>
    public static string Quote(string value, int maxChars = 64)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length <= maxChars)
        {
            return value;
        }

        // Never cut a surrogate pair in half: the message must stay valid text.
        var cut = char.IsHighSurrogate(value[maxChars - 1]) ? maxChars - 1 : maxChars;
        return string.Concat(value.AsSpan(0, cut), "…");
    }
}
