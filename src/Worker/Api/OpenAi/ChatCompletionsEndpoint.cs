using GpuFleet.Contracts;
using System.Text;
using System.Text.Json;
using GpuFleet.Worker.Chat;
using GpuFleet.Worker.Engine;
using Microsoft.AspNetCore.Http;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>
/// <c>POST /v1/chat/completions</c>: renders the conversation in the Qwen chat format, generates, and
/// splits the output into reasoning (<c>reasoning_content</c>), content and tool calls, as one response
/// or as a server-sent-event stream.
/// </summary>
internal static class ChatCompletionsEndpoint
{
    public static Task HandleAsync(HttpContext http, WorkerApi api) => OpenAiRequest.ServeAsync(http, api, async body =>
    {
        var request = ChatCompletionRequest.Parse(body);
        api.EnsureModel(request.Parameters.Model);

        GenerationRequest generation;
        QwenOutputParser parser;
        try
        {
            (generation, parser) = ChatPipeline.Prepare(api, request.Messages, request.Tools, request.ToolChoice, request.ToolChoiceName,
                request.JsonObject, request.EnableThinking, request.Parameters);
        }
        catch (ChatFormatException ex)
        {
            throw OpenAiException.BadRequest(ex.Message, "messages", "invalid_value");
        }

        generation = generation.WithPrefixBlocks(http.Request.Headers[GpuFleetHeaders.PrefixBlocks]);
        var admission = api.Engine.Submit(generation, http.RequestAborted);
        if (!admission.Accepted)
        {
            throw api.ToError(admission.Rejection!);
        }

        var reply = new Reply(ResponseJson.NewId("chatcmpl-"), api.Time.GetUtcNow().ToUnixTimeSeconds(), request.Parameters.Model);
        if (request.Parameters.Stream)
        {
            await StreamAsync(http, admission.Stream!, parser, reply, request.Parameters.IncludeUsage);
        }
        else
        {
            await RespondAsync(http, admission.Stream!, parser, reply);
        }
    });

    private static async Task RespondAsync(HttpContext http, GenerationStream stream, QwenOutputParser parser, Reply reply)
    {
        var content = new StringBuilder();
        var reasoning = new StringBuilder();
        var calls = new List<ToolCallParsed>();
        CompletionEvent? completion = null;
        await foreach (var item in stream.ReadAllAsync(http.RequestAborted))
        {
            var events = item switch
            {
                TokenEvent token => parser.Push(token.Text),
                CompletionEvent done => [.. parser.Push(done.TrailingText), .. parser.Complete()],
                _ => [],
            };
            completion = item as CompletionEvent ?? completion;
            foreach (var e in events)
            {
                switch (e)
                {
                    case ContentDelta d: content.Append(d.Text); break;
                    case ReasoningDelta r: reasoning.Append(r.Text); break;
                    case ToolCallParsed c: calls.Add(c); break;
                }
            }
        }

        // The engine always ends a stream with its completion event.
        completion = completion ?? throw new InvalidOperationException("The generation stream ended without a completion.");
        if (OpenAiException.IsFailure(completion))
        {
            throw OpenAiException.Failed(completion);
        }

        var body = ResponseJson.Build(json =>
        {
            json.WriteStartObject();
            ResponseJson.Header(json, reply.Id, "chat.completion", reply.Created, reply.Model);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            if (content.Length > 0 || calls.Count == 0)
            {
                json.WriteString("content", content.ToString());
            }
            else
            {
                json.WriteNull("content");
            }

            if (reasoning.Length > 0)
            {
                json.WriteString("reasoning_content", reasoning.ToString());
            }

            if (calls.Count > 0)
            {
                ResponseJson.ToolCalls(json, calls, withIndex: false);
            }

            json.WriteEndObject();
            json.WriteNull("logprobs");
            json.WriteString("finish_reason", ResponseJson.FinishReason(completion.Reason, calls.Count > 0));
            json.WriteEndObject();
            json.WriteEndArray();
            ResponseJson.Usage(json, completion.Usage);
            json.WriteEndObject();
        });
        http.Response.ContentType = "application/json";
        ServerSentEvents.UsageHeader(http.Response, completion.Usage);
        await http.Response.WriteAsync(body, http.RequestAborted);
    }

    private static async Task StreamAsync(HttpContext http, GenerationStream stream, QwenOutputParser parser, Reply reply, bool includeUsage)
    {
        var response = http.Response;
        var cancel = http.RequestAborted;
        var toolCalls = false;
        var started = false;
        await foreach (var item in stream.ReadAllAsync(cancel))
        {
            if (!started)
            {
                // Nothing is sent before the first token: a request that fails before it (the worker stopping)
                // still gets a plain HTTP error that a gateway may retry elsewhere.
                if (item is CompletionEvent early && OpenAiException.IsFailure(early))
                {
                    throw OpenAiException.Failed(early);
                }

                ServerSentEvents.Start(response);
                await ServerSentEvents.WriteAsync(response, Chunk(reply, json => json.WriteString("role", "assistant"), null), cancel);
                started = true;
            }

            var events = item switch
            {
                TokenEvent token => parser.Push(token.Text),
                CompletionEvent done => [.. parser.Push(done.TrailingText), .. parser.Complete()],
                _ => [],
            };
            foreach (var e in events)
            {
                toolCalls |= e is ToolCallParsed;
                await ServerSentEvents.WriteAsync(response, Chunk(reply, json => WriteDelta(json, e), null), cancel);
            }

            if (item is not CompletionEvent completion)
            {
                continue;
            }

            if (OpenAiException.IsFailure(completion))
            {
                // After the first byte the status is sent: a failure becomes an error event, never a clean end.
                await ServerSentEvents.WriteAsync(response, OpenAiException.Failed(completion).ToJson(), cancel);
                await ServerSentEvents.DoneAsync(response, completion.Usage, cancel);
                return;
            }

            await ServerSentEvents.WriteAsync(response, Chunk(reply, _ => { }, ResponseJson.FinishReason(completion.Reason, toolCalls)), cancel);
            if (includeUsage)
            {
                await ServerSentEvents.WriteAsync(response, ResponseJson.UsageChunk(reply.Id, "chat.completion.chunk", reply.Created, reply.Model, completion.Usage), cancel);
            }

            await ServerSentEvents.DoneAsync(response, completion.Usage, cancel);
        }
    }

    private static void WriteDelta(Utf8JsonWriter json, ChatOutputEvent e)
    {
        switch (e)
        {
            case ContentDelta d:
                json.WriteString("content", d.Text);
                break;
            case ReasoningDelta r:
                json.WriteString("reasoning_content", r.Text);
                break;
            case ToolCallParsed c:
                ResponseJson.ToolCalls(json, [c], withIndex: true);
                break;
        }
    }

    private static string Chunk(Reply reply, Action<Utf8JsonWriter> delta, string? finishReason) => ResponseJson.Build(json =>
    {
        json.WriteStartObject();
        ResponseJson.Header(json, reply.Id, "chat.completion.chunk", reply.Created, reply.Model);
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        json.WriteStartObject("delta");
        delta(json);
        json.WriteEndObject();
        json.WriteNull("logprobs");
        ResponseJson.FinishReasonField(json, finishReason);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
    });

    private sealed record Reply(string Id, long Created, string Model);
}
