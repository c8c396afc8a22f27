using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Contracts;

/// <summary>The OpenAI error body <c>{"error":{"message","type","param","code"}}</c>, as workers and gateways both answer it.</summary>
public static class OpenAiErrorJson
{
    public static string Format(string message, string type, string? param, string? code)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", message);
            json.WriteString("type", type);
            WriteNullable(json, "param", param);
            WriteNullable(json, "code", code);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Answers with the error: <paramref name="status"/>, a JSON body, and <c>Retry-After</c> when
    /// <paramref name="retryAfterSeconds"/> is known (429/503). The response must not have started.
    /// </summary>
    public static Task WriteAsync(HttpContext context, int status, string json, int? retryAfterSeconds)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        if (retryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        return response.WriteAsync(json, context.RequestAborted);
    }

    private static void WriteNullable(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
