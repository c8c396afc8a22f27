using System.Text;
using System.Text.Json;
using GpuFleet.Worker.Chat;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>
/// GBNF grammars (llama.cpp's grammar sampler) that make the output valid by construction: a JSON object
/// for <c>response_format: json_object</c>, and a Qwen XML tool call for <c>tool_choice: required</c> or a
/// named function. Tool-call parameters follow the JSON schema's type of each required parameter.
/// </summary>
internal static class OutputGrammars
{
    private const string JsonRules = """
        value ::= object | array | string | number | "true" | "false" | "null"
        object ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
        array ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
        string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt] | "\\u" [0-9a-fA-F]{4} )* "\""
        number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
        integer ::= "-"? ( "0" | [1-9] [0-9]{0,17} )
        ws ::= [ \t\n]{0,8}
        """;

    public static string JsonObject() => "root ::= ws object\n" + JsonRules;

    /// <summary>Exactly one tool call to one of <paramref name="tools"/> (or only <paramref name="name"/>).</summary>
    public static string ToolCall(IReadOnlyList<ChatTool> tools, string? name)
    {
        var chosen = name is null ? tools : tools.Where(t => t.Name == name).ToList();
        var grammar = new StringBuilder();
        grammar.Append("root ::= \"<tool_call>\\n\" ( ");
        grammar.AppendJoin(" | ", chosen.Select((_, i) => $"call{i}"));
        grammar.Append(" ) \"</tool_call>\"\n");
        for (var i = 0; i < chosen.Count; i++)
        {
            var tool = chosen[i];
            grammar.Append($"call{i} ::= \"<function={Escape(tool.Name)}>\\n\"");
            foreach (var (parameter, schema) in RequiredParameters(tool))
            {
                grammar.Append($" \"<parameter={Escape(parameter)}>\\n\" {ValueRule(schema)} \"\\n</parameter>\\n\"");
            }

            grammar.Append(" \"</function>\\n\"\n");
        }

        // Free text ends at a newline followed by '<' (the closing </parameter>).
        grammar.Append("text ::= ( [^\\n] | \"\\n\" [^<] )+\n");
        grammar.Append(JsonRules);
        return grammar.ToString();
    }

    private static IEnumerable<(string Name, JsonElement? Schema)> RequiredParameters(ChatTool tool)
    {
        if (tool.Parameters is not { ValueKind: JsonValueKind.Object } schema
            || !schema.TryGetProperty("required", out var required) || required.ValueKind != JsonValueKind.Array)
        {
            yield break;
        }

        schema.TryGetProperty("properties", out var properties);
        foreach (var item in required.EnumerateArray())
        {
            if (item.GetString() is not { } parameter)
            {
                continue;
            }

            JsonElement? property = properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(parameter, out var p) ? p : null;
            yield return (parameter, property);
        }
    }

    private static string ValueRule(JsonElement? schema)
    {
        if (schema is not { ValueKind: JsonValueKind.Object } s)
        {
            return "text";
        }

        if (s.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array)
        {
            // Strings appear raw in Qwen's XML; other values as JSON text.
            return "( " + string.Join(" | ", values.EnumerateArray().Select(v =>
                "\"" + Escape(v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()) + "\"")) + " )";
        }

        var type = s.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return type switch
        {
            "integer" => "integer",
            "number" => "number",
            "boolean" => "( \"true\" | \"false\" )",
            "object" => "object",
            "array" => "array",
            _ => "text",
        };
    }

    private static string Escape(string literal) =>
        literal.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal);
}
