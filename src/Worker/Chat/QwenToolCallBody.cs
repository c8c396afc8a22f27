using System.Text;
using System.Text.Json;

namespace GpuFleet.Worker.Chat;

/// <summary>
/// The inside of one Qwen tool call, <c>&lt;function=NAME&gt;&lt;parameter=P&gt;\nVALUE\n&lt;/parameter&gt;...&lt;/function&gt;</c>,
/// turned into a name and OpenAI arguments JSON.
/// </summary>
internal static class QwenToolCallBody
{
    private const string FunctionOpen = "<function=";
    private const string FunctionClose = "</function>";
    private const string ParameterOpen = "<parameter=";
    private const string ParameterClose = "</parameter>";

    [Flags]
    private enum Kinds
    {
        None = 0,
        String = 1,
        Number = 2,
        Boolean = 4,
        Object = 8,
        Array = 16,
        Null = 32,
        Any = String | Number | Boolean | Object | Array | Null,
    }

    /// <summary>
    /// Reads the function name and raw parameter values (one leading and one trailing newline removed; a
    /// repeated parameter keeps its first position and last value). False without a function header, or
    /// without &lt;/function&gt; when <paramref name="requireFunctionClose"/>.
    /// </summary>
    public static bool TryParse(string body, bool requireFunctionClose, out string name, out List<KeyValuePair<string, string>> arguments)
    {
        name = "";
        arguments = [];
        var open = body.IndexOf(FunctionOpen, StringComparison.Ordinal);
        var nameEnd = open < 0 ? -1 : body.IndexOf('>', open + FunctionOpen.Length);
        if (nameEnd < 0)
        {
            return false;
        }

        name = body[(open + FunctionOpen.Length)..nameEnd].Trim();
        if (name.Length == 0)
        {
            return false;
        }

        var closed = false;
        var pos = nameEnd + 1;
        while (true)
        {
            var parameter = body.IndexOf(ParameterOpen, pos, StringComparison.Ordinal);
            var close = body.IndexOf(FunctionClose, pos, StringComparison.Ordinal);
            if (close >= 0 && (parameter < 0 || close < parameter))
            {
                closed = true;
                break;
            }

            var parameterNameEnd = parameter < 0 ? -1 : body.IndexOf('>', parameter + ParameterOpen.Length);
            if (parameterNameEnd < 0)
            {
                break;
            }

            var parameterName = body[(parameter + ParameterOpen.Length)..parameterNameEnd].Trim();
            var valueStart = parameterNameEnd + 1;
            var valueEnd = body.IndexOf(ParameterClose, valueStart, StringComparison.Ordinal);
            if (valueEnd >= 0)
            {
                pos = valueEnd + ParameterClose.Length;
            }
            else
            {
                // No </parameter>: the value runs to the next parameter, the function's end or the body's end.
                valueEnd = FirstOf(body, valueStart, ParameterOpen, FunctionClose);
                pos = valueEnd;
            }

            SetArgument(arguments, parameterName, TrimOneNewline(body[valueStart..valueEnd]));
        }

        return closed || !requireFunctionClose;
    }

    /// <summary>
    /// The arguments as a JSON object. A value becomes JSON when its parameter's schema allows a non-string
    /// type and the text parses as one of the allowed types (Python's True/False/None too, as the template
    /// renders booleans and null that way); otherwise it is a JSON string. Without a schema every non-string
    /// JSON value is allowed.
    /// </summary>
    public static string ArgumentsJson(List<KeyValuePair<string, string>> arguments, ChatTool? tool)
    {
        var properties = tool?.Parameters is { ValueKind: JsonValueKind.Object } parameters
            && parameters.TryGetProperty("properties", out var p) && p.ValueKind == JsonValueKind.Object ? p : (JsonElement?)null;
        var sb = new StringBuilder("{");
        for (var i = 0; i < arguments.Count; i++)
        {
            var (name, raw) = arguments[i];
            if (i > 0)
            {
                sb.Append(',');
            }

            PythonText.AppendJsonString(sb, name);
            sb.Append(':');
            var kinds = properties is { } props && props.TryGetProperty(name, out var schema) ? KindsOf(schema) : Kinds.Any;
            if (!TryAppendTypedValue(sb, raw, kinds))
            {
                PythonText.AppendJsonString(sb, raw);
            }
        }

        return sb.Append('}').ToString();
    }

    private static bool TryAppendTypedValue(StringBuilder sb, string raw, Kinds kinds)
    {
        if ((kinds & ~Kinds.String) == Kinds.None)
        {
            return false;
        }

        var text = raw.Trim();
        if (kinds.HasFlag(Kinds.Boolean) && text is "True" or "False")
        {
            sb.Append(text == "True" ? "true" : "false");
            return true;
        }

        if (kinds.HasFlag(Kinds.Null) && text == "None")
        {
            sb.Append("null");
            return true;
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            var value = document.RootElement;
            var kind = value.ValueKind switch
            {
                JsonValueKind.Number => Kinds.Number,
                JsonValueKind.True or JsonValueKind.False => Kinds.Boolean,
                JsonValueKind.Object => Kinds.Object,
                JsonValueKind.Array => Kinds.Array,
                JsonValueKind.Null => Kinds.Null,
                _ => Kinds.None,
            };
            if (kind == Kinds.None || !kinds.HasFlag(kind))
            {
                return false;
            }

            AppendCompactJson(sb, value);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    // The JSON types a parameter schema allows, as llama.cpp reads them: "type" (one or a list), else the
    // types of "enum"/"const" values, else the union over "anyOf"/"oneOf". Anything else allows any type.
    private static Kinds KindsOf(JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            return Kinds.Any;
        }

        if (schema.TryGetProperty("type", out var type))
        {
            var kinds = Kinds.None;
            if (type.ValueKind == JsonValueKind.String)
            {
                kinds = KindOfTypeName(type.GetString()!);
            }
            else if (type.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in type.EnumerateArray())
                {
                    kinds |= item.ValueKind == JsonValueKind.String ? KindOfTypeName(item.GetString()!) : Kinds.None;
                }
            }

            return kinds == Kinds.None ? Kinds.Any : kinds;
        }

        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array)
        {
            var kinds = Kinds.None;
            foreach (var value in values.EnumerateArray())
            {
                kinds |= KindOfValue(value);
            }

            return kinds == Kinds.None ? Kinds.Any : kinds;
        }

        if (schema.TryGetProperty("const", out var constant))
        {
            return KindOfValue(constant);
        }

        foreach (var key in (string[])["anyOf", "oneOf"])
        {
            if (schema.TryGetProperty(key, out var children) && children.ValueKind == JsonValueKind.Array)
            {
                var kinds = Kinds.None;
                foreach (var child in children.EnumerateArray())
                {
                    kinds |= KindsOf(child);
                }

                return kinds == Kinds.None ? Kinds.Any : kinds;
            }
        }

        return Kinds.Any;
    }

    private static Kinds KindOfTypeName(string name) => name switch
    {
        "string" => Kinds.String,
        "number" or "integer" => Kinds.Number,
        "boolean" => Kinds.Boolean,
        "object" => Kinds.Object,
        "array" => Kinds.Array,
        "null" => Kinds.Null,
        _ => Kinds.None,
    };

    private static Kinds KindOfValue(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => Kinds.String,
        JsonValueKind.Number => Kinds.Number,
        JsonValueKind.True or JsonValueKind.False => Kinds.Boolean,
        JsonValueKind.Object => Kinds.Object,
        JsonValueKind.Array => Kinds.Array,
        _ => Kinds.Null,
    };

    private static void AppendCompactJson(StringBuilder sb, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                var firstProperty = true;
                foreach (var property in value.EnumerateObject())
                {
                    if (!firstProperty)
                    {
                        sb.Append(',');
                    }

                    firstProperty = false;
                    PythonText.AppendJsonString(sb, property.Name);
                    sb.Append(':');
                    AppendCompactJson(sb, property.Value);
                }

                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                var firstItem = true;
                foreach (var item in value.EnumerateArray())
                {
                    if (!firstItem)
                    {
                        sb.Append(',');
                    }

                    firstItem = false;
                    AppendCompactJson(sb, item);
                }

                sb.Append(']');
                break;
            case JsonValueKind.String:
                PythonText.AppendJsonString(sb, value.GetString()!);
                break;
            default:
                // Numbers keep the model's digits; true, false and null are their own text.
                sb.Append(value.GetRawText());
                break;
        }
    }

    private static void SetArgument(List<KeyValuePair<string, string>> arguments, string name, string value)
    {
        var at = arguments.FindIndex(a => a.Key == name);
        if (at >= 0)
        {
            arguments[at] = new(name, value);
        }
        else
        {
            arguments.Add(new(name, value));
        }
    }

    private static string TrimOneNewline(string value)
    {
        var start = value.StartsWith('\n') ? 1 : 0;
        var end = value.Length > start && value.EndsWith('\n') ? value.Length - 1 : value.Length;
        return value[start..end];
    }

    private static int FirstOf(string text, int from, string a, string b)
    {
        var atA = text.IndexOf(a, from, StringComparison.Ordinal);
        var atB = text.IndexOf(b, from, StringComparison.Ordinal);
        return atA < 0 ? (atB < 0 ? text.Length : atB) : (atB < 0 ? atA : Math.Min(atA, atB));
    }
}
