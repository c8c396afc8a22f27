using System.Text.Json;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>
/// Typed access to the fields of one JSON object, where a wrong type is a 400 naming the parameter
/// (e.g. <c>messages[2].content</c>) instead of a deserializer exception.
/// </summary>
internal readonly struct JsonFields(JsonElement element, string path)
{
    public JsonElement Element => element;

    public string Path => path;

    public string Name(string field) => path.Length == 0 ? field : $"{path}.{field}";

    public bool Has(string field) => element.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null;

    public JsonElement? Raw(string field) =>
        element.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string? String(string field)
    {
        if (Raw(field) is not { } value)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw Wrong(field, "a string");
    }

    public string RequiredString(string field) =>
        String(field) ?? throw OpenAiException.BadRequest($"'{Name(field)}' is required.", Name(field), "missing_required_parameter");

    public bool? Bool(string field)
    {
        if (Raw(field) is not { } value)
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong(field, "a boolean"),
        };
    }

    public double? Number(string field, double min, double max)
    {
        if (Raw(field) is not { } value)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
        {
            throw Wrong(field, "a number");
        }

        return number >= min && number <= max
            ? number
            : throw OpenAiException.BadRequest($"'{Name(field)}' must be between {min} and {max}, not {number}.", Name(field), "invalid_value");
    }

    public long? Integer(string field, long min, long max)
    {
        if (Raw(field) is not { } value)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number))
        {
            throw Wrong(field, "an integer");
        }

        return number >= min && number <= max
            ? number
            : throw OpenAiException.BadRequest($"'{Name(field)}' must be between {min} and {max}, not {number}.", Name(field), "invalid_value");
    }

    public JsonFields? Object(string field)
    {
        if (Raw(field) is not { } value)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Object ? new JsonFields(value, Name(field)) : throw Wrong(field, "an object");
    }

    public JsonElement? Array(string field)
    {
        if (Raw(field) is not { } value)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Array ? value : throw Wrong(field, "an array");
    }

    public OpenAiException Wrong(string field, string expected) =>
        OpenAiException.BadRequest($"'{Name(field)}' must be {expected}.", Name(field), "invalid_type");
}
