using GpuFleet.Contracts;
using System.Text;
using System.Text.Json;
using GpuFleet.Worker.Engine;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary><c>POST /v1/completions</c>: a raw prompt (text or token ids) continued as text, whole or streamed.</summary>
internal static class CompletionsEndpoint
{
    public static Task HandleAsync(HttpContext http, WorkerApi api) => OpenAiRequest.ServeAsync(http, api, async root =>
    {
        var body = new JsonFields(root, string.Empty);
        // OpenAI's default for this endpoint is 16 tokens.
        var parameters = GenerationParameters.Parse(body, defaultMaxTokens: 16);
        api.EnsureModel(parameters.Model);
        if (body.Bool("echo") == true || body.Has("suffix") || body.Has("best_of"))
        {
            throw OpenAiException.BadRequest("echo, suffix and best_of are not supported by this server.", "echo", "unsupported_parameter");
        }

        var prompt = ParsePrompt(body, api);
        var generation = api.BuildRequest(prompt, parameters, grammar: null).WithPrefixBlocks(http.Request.Headers[GpuFleetHeaders.PrefixBlocks]);
        var admission = api.Engine.Submit(generation, http.RequestAborted);
        if (!admission.Accepted)
        {
            throw api.ToError(admission.Rejection!);
        }

        var id = ResponseJson.NewId("cmpl-");
        var created = api.Time.GetUtcNow().ToUnixTimeSeconds();
        if (parameters.Stream)
        {
            await StreamAsync(http, admission.Stream!, id, created, parameters);
        }
        else
        {
            await RespondAsync(http, admission.Stream!, id, created, parameters.Model);
        }
    });

    /// <summary>A string, a one-element array of strings, or an array of token ids.</summary>
    private static int[] ParsePrompt(JsonFields body, WorkerApi api)
    {
        var prompt = body.Raw("prompt") ?? throw OpenAiException.BadRequest("'prompt' is required.", "prompt", "missing_required_parameter");
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                return NonEmpty(ChatPipeline.TokenizePrompt(api, prompt.GetString()!));
            case JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                return NonEmpty([.. prompt.EnumerateArray().Select(e => e.TryGetInt32(out var t) ? t : throw body.Wrong("prompt", "an array of token ids"))]);
            case JsonValueKind.Array when prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.String:
                return NonEmpty(ChatPipeline.TokenizePrompt(api, prompt[0].GetString()!));
            case JsonValueKind.Array:
                throw OpenAiException.BadRequest("Only one prompt per request is supported ('prompt' as a string, a one-string array, or token ids).", "prompt", "unsupported_value");
            default:
                throw body.Wrong("prompt", "a string or an array of token ids");
        }

        static int[] NonEmpty(int[] tokens) => tokens.Length > 0 ? tokens : throw OpenAiException.BadRequest("'prompt' is empty.", "prompt", "invalid_value");
    }

    private static async Task RespondAsync(HttpContext http, GenerationStream stream, string id, long created, string model)
    {
        var text = new StringBuilder();
        CompletionEvent? completion = null;
        await foreach (var item in stream.ReadAllAsync(http.RequestAborted))
        {
            switch (item)
            {
                case TokenEvent token:
                    text.Append(token.Text);
                    break;
                case CompletionEvent done:
                    text.Append(done.TrailingText);
                    completion = done;
                    break;
            }
        }

        // The engine always ends a stream with its completion event.
        completion = completion ?? throw new InvalidOperationException("The generation stream ended without a completion.");
        if (OpenAiException.IsFailure(completion))
        {
            throw OpenAiException.Failed(completion);
        }

        http.Response.ContentType = "application/json";
        ServerSentEvents.UsageHeader(http.Response, completion.Usage);
        await http.Response.WriteAsync(ResponseJson.Build(json =>
        {
            json.WriteStartObject();
            ResponseJson.Header(json, id, "text_completion", created, model);
            json.WriteStartArray("choices");
            WriteChoice(json, text.ToString(), ResponseJson.FinishReason(completion.Reason, toolCalls: false));
            json.WriteEndArray();
            ResponseJson.Usage(json, completion.Usage);
            json.WriteEndObject();
        }), http.RequestAborted);
    }

    private static async Task StreamAsync(HttpContext http, GenerationStream stream, string id, long created, GenerationParameters parameters)
    {
        var response = http.Response;
        var cancel = http.RequestAborted;
        var started = false;
        await foreach (var item in stream.ReadAllAsync(cancel))
        {
            if (!started)
            {
                // As for chat: nothing is sent before the first token, so an early failure is a plain HTTP error.
                if (item is CompletionEvent early && OpenAiException.IsFailure(early))
                {
                    throw OpenAiException.Failed(early);
                }

                ServerSentEvents.Start(response);
                started = true;
            }

            switch (item)
            {
                case TokenEvent { Text.Length: > 0 } token:
                    await ServerSentEvents.WriteAsync(response, Chunk(id, created, parameters.Model, token.Text, null), cancel);
                    break;
                case CompletionEvent failed when OpenAiException.IsFailure(failed):
                    await ServerSentEvents.WriteAsync(response, OpenAiException.Failed(failed).ToJson(), cancel);
                    await ServerSentEvents.DoneAsync(response, failed.Usage, cancel);
                    return;
                case CompletionEvent done:
                    await ServerSentEvents.WriteAsync(response, Chunk(id, created, parameters.Model, done.TrailingText, ResponseJson.FinishReason(done.Reason, false)), cancel);
                    if (parameters.IncludeUsage)
                    {
                        await ServerSentEvents.WriteAsync(response, ResponseJson.UsageChunk(id, "text_completion", created, parameters.Model, done.Usage), cancel);
                    }

                    await ServerSentEvents.DoneAsync(response, done.Usage, cancel);
                    break;
            }
        }
    }

    private static string Chunk(string id, long created, string model, string text, string? finishReason) => ResponseJson.Build(json =>
    {
        json.WriteStartObject();
        ResponseJson.Header(json, id, "text_completion", created, model);
        json.WriteStartArray("choices");
        WriteChoice(json, text, finishReason);
        json.WriteEndArray();
        json.WriteEndObject();
    });

    private static void WriteChoice(Utf8JsonWriter json, string text, string? finishReason)
    {
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        json.WriteString("text", text);
        json.WriteNull("logprobs");
        ResponseJson.FinishReasonField(json, finishReason);
        json.WriteEndObject();
    }
}
