using System.Text;
using System.Text.Json;
using GpuFleet.Worker.Chat;
using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>Writes the OpenAI response objects (completions, chunks, usage) with Utf8JsonWriter.</summary>
internal static class ResponseJson
{
    public static string Build(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            write(json);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static void Header(Utf8JsonWriter json, string id, string type, long created, string model)
    {
        json.WriteString("id", id);
        json.WriteString("object", type);
        json.WriteNumber("created", created);
        json.WriteString("model", model);
        json.WriteString("system_fingerprint", "gpufleet");
    }

    public static void Usage(Utf8JsonWriter json, GenerationUsage usage)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", usage.PromptTokens);
        json.WriteNumber("completion_tokens", usage.CompletionTokens);
        json.WriteNumber("total_tokens", usage.PromptTokens + usage.CompletionTokens);
        json.WriteStartObject("prompt_tokens_details");
        json.WriteNumber("cached_tokens", usage.CachedPromptTokens);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    public static void ToolCalls(Utf8JsonWriter json, IEnumerable<ToolCallParsed> calls, bool withIndex)
    {
        json.WriteStartArray("tool_calls");
        foreach (var call in calls)
        {
            json.WriteStartObject();
            if (withIndex)
            {
                json.WriteNumber("index", call.Index);
            }

            json.WriteString("id", call.Id);
            json.WriteString("type", "function");
            json.WriteStartObject("function");
            json.WriteString("name", call.Name);
            json.WriteString("arguments", call.ArgumentsJson);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    /// <summary><c>finish_reason</c>: null while a choice is still streaming.</summary>
    public static void FinishReasonField(Utf8JsonWriter json, string? finishReason)
    {
        if (finishReason is null)
        {
            json.WriteNull("finish_reason");
        }
        else
        {
            json.WriteString("finish_reason", finishReason);
        }
    }

    /// <summary>The last chunk of a stream with <c>stream_options.include_usage</c>: no choices, only usage.</summary>
    public static string UsageChunk(string id, string type, long created, string model, GenerationUsage usage) => Build(json =>
    {
        json.WriteStartObject();
        Header(json, id, type, created, model);
        json.WriteStartArray("choices");
        json.WriteEndArray();
        Usage(json, usage);
        json.WriteEndObject();
    });

    public static string FinishReason(FinishReason reason, bool toolCalls) => reason switch
    {
        Engine.FinishReason.Length => "length",
        _ when toolCalls => "tool_calls",
        _ => "stop",
    };

    public static string NewId(string prefix) => prefix + Guid.NewGuid().ToString("N")[..24];
}
