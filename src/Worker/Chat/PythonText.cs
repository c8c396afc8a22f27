using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;

namespace GpuFleet.Worker.Chat;

/// <summary>
/// Python's text forms of JSON values, as the Hugging Face chat template engine produces them: <c>tojson</c>
/// (json.dumps with ensure_ascii=False and ", " / ": " separators), <c>|string</c> (str()) and str.strip().
/// The model was trained on prompts rendered that way, so the renderer must match them byte for byte.
/// </summary>
internal static class PythonText
{
    /// <summary>json.dumps(value, ensure_ascii=False) of a value parsed by json.loads.</summary>
    public static void AppendJson(StringBuilder sb, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                var first = true;
                foreach (var (name, item) in DictionaryItems(value))
                {
                    if (!first)
                    {
                        sb.Append(", ");
                    }

                    first = false;
                    AppendJsonString(sb, name);
                    sb.Append(": ");
                    AppendJson(sb, item);
                }

                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                var index = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (index++ > 0)
                    {
                        sb.Append(", ");
                    }

                    AppendJson(sb, item);
                }

                sb.Append(']');
                break;
            case JsonValueKind.String:
                AppendJsonString(sb, value.GetString()!);
                break;
            case JsonValueKind.Number:
                sb.Append(NumberText(value, json: true));
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            default:
                sb.Append("null");
                break;
        }
    }

    /// <summary>str() of a scalar parsed by json.loads: strings raw, True/False/None, Python number text.</summary>
    public static string Str(JsonElement scalar) => scalar.ValueKind switch
    {
        JsonValueKind.String => scalar.GetString()!,
        JsonValueKind.Number => NumberText(scalar, json: false),
        JsonValueKind.True => "True",
        JsonValueKind.False => "False",
        JsonValueKind.Null => "None",
        _ => throw new ArgumentException("Not a scalar.", nameof(scalar)),
    };

    /// <summary>
    /// The entries of a JSON object as json.loads builds the dict: a repeated key keeps its first position
    /// and takes its last value.
    /// </summary>
    public static List<KeyValuePair<string, JsonElement>> DictionaryItems(JsonElement obj)
    {
        var items = new List<KeyValuePair<string, JsonElement>>();
        Dictionary<string, int>? positions = null;
        foreach (var property in obj.EnumerateObject())
        {
            positions ??= new Dictionary<string, int>(StringComparer.Ordinal);
            if (positions.TryGetValue(property.Name, out var at))
            {
                items[at] = new(property.Name, property.Value);
            }
            else
            {
                positions[property.Name] = items.Count;
                items.Add(new(property.Name, property.Value));
            }
        }

        return items;
    }

    /// <summary>str.strip() with no argument: removes Python's Unicode whitespace from both ends.</summary>
    public static string Strip(string text) => StripEnd(StripStart(text));

    /// <summary>str.lstrip() with no argument.</summary>
    public static string StripStart(string text)
    {
        var start = 0;
        while (start < text.Length && IsSpace(text[start]))
        {
            start++;
        }

        return text[start..];
    }

    /// <summary>str.rstrip() with no argument.</summary>
    public static string StripEnd(string text)
    {
        var end = text.Length;
        while (end > 0 && IsSpace(text[end - 1]))
        {
            end--;
        }

        return text[..end];
    }

    /// <summary>
    /// Python's str.isspace for one UTF-16 unit: .NET's white space plus the information separators
    /// U+001C..U+001F, which Python also strips.
    /// </summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\u001c' and <= '\u001f';

    /// <summary>json.dumps of a string with ensure_ascii=False: quotes, backslashes and control characters escaped.</summary>
    public static void AppendJsonString(StringBuilder sb, string text)
    {
        sb.Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                case '\b':
                    sb.Append("\\b");
                    break;
                case '\f':
                    sb.Append("\\f");
                    break;
                default:
                    if (c < ' ')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }

    // json.loads makes an int of a number without fraction or exponent (arbitrary size) and a float otherwise.
    private static string NumberText(JsonElement number, bool json)
    {
        var raw = number.GetRawText();
        if (raw.AsSpan().IndexOfAny(".eE") < 0)
        {
            return BigInteger.Parse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
        }

        var value = double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (double.IsInfinity(value))
        {
            // json.dumps writes Infinity, str() writes inf.
            var text = json ? "Infinity" : "inf";
            return value < 0 ? "-" + text : text;
        }

        return FloatRepr(value);
    }

    /// <summary>repr(float): the shortest round-trip digits, positional for exponents -4..15, else d.ddde+XX.</summary>
    internal static string FloatRepr(double value)
    {
        var sign = double.IsNegative(value) ? "-" : "";
        if (value == 0)
        {
            return sign + "0.0";
        }

        // .NET's "R" gives the same shortest round-trip digits as Python; only the layout differs.
        var r = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        var ePos = r.IndexOf('E', StringComparison.Ordinal);
        var exponent = ePos >= 0 ? int.Parse(r.AsSpan(ePos + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
        var mantissa = ePos >= 0 ? r[..ePos] : r;
        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var digits = dot >= 0 ? mantissa.Remove(dot, 1) : mantissa;
        var point = (dot >= 0 ? dot : mantissa.Length) + exponent;
        var leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        point -= leadingZeros;

        // value = 0.DIGITS x 10^point; Python switches to exponent form when point < -3 or point > 16.
        if (point is < -3 or > 16)
        {
            var e = point - 1;
            var mant = digits.Length > 1 ? digits[..1] + "." + digits[1..] : digits;
            return sign + mant + "e" + (e < 0 ? "-" : "+") + Math.Abs(e).ToString("00", CultureInfo.InvariantCulture);
        }

        if (point <= 0)
        {
            return sign + "0." + new string('0', -point) + digits;
        }

        if (point >= digits.Length)
        {
            return sign + digits + new string('0', point - digits.Length) + ".0";
        }

        return sign + digits[..point] + "." + digits[point..];
    }
}
