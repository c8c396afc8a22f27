using System.Text.Json;
using GpuFleet.Contracts;
using GpuFleet.Contracts.V1;
using Grpc.Core;
using GpuFleet.Worker.Api.OpenAi;
using GpuFleet.Worker.Chat;
using GpuFleet.Worker.Engine;
using ChatMessage = GpuFleet.Worker.Chat.ChatMessage;
using FinishReason = GpuFleet.Worker.Engine.FinishReason;

namespace GpuFleet.Worker.Api.Grpc;

/// <summary>
/// <c>gpufleet.v1.Inference/Generate</c>: the same generation as the OpenAI API for internal services,
/// streamed as token deltas (text, reasoning, tool calls, token ids) and one final message with usage.
/// Refusals carry gRPC status codes; an overloaded worker adds <c>grpc-retry-pushback-ms</c>.
/// </summary>
internal sealed class InferenceGrpcService(WorkerApi api) : Inference.InferenceBase
{
    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> writer, ServerCallContext context)
    {
        using var tracked = api.Lifecycle.Track();
        try
        {
            api.EnsureServing();
            if (request.Model.Length > 0)
            {
                api.EnsureModel(request.Model);
            }
        }
        catch (OpenAiException ex)
        {
            throw ToGrpc(ex);
        }

        // A uint32 max_tokens beyond int saturates rather than wrapping negative: the engine clamps it to the context anyway.
        var parameters = new GenerationParameters(api.ModelId, Stream: true, IncludeUsage: true,
            request.MaxTokens > 0 ? (int)Math.Min(int.MaxValue, request.MaxTokens) : null, Sampling(request.Sampling), request.Stop, request.IgnoreEos);
        GenerationRequest generation;
        QwenOutputParser? parser = null;
        switch (request.InputCase)
        {
            case GenerateRequest.InputOneofCase.Prompt when request.Prompt.Length > 0:
                try
                {
                    generation = api.BuildRequest(ChatPipeline.TokenizePrompt(api, request.Prompt), parameters, grammar: null);
                }
                catch (OpenAiException ex)
                {
                    throw ToGrpc(ex);
                }

                break;
            case GenerateRequest.InputOneofCase.Chat:
                try
                {
                    var tools = request.Chat.Tools.Select(ToTool).ToList();
                    (generation, parser) = ChatPipeline.Prepare(api, [.. request.Chat.Messages.Select(ToMessage)], tools, ToolChoiceMode.Auto, null,
                        jsonObject: false, request.Chat.HasEnableThinking ? request.Chat.EnableThinking : null, parameters);
                }
                catch (ChatFormatException ex)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, ex.Message));
                }
                catch (OpenAiException ex)
                {
                    throw ToGrpc(ex);
                }

                break;
            default:
                throw new RpcException(new Status(StatusCode.InvalidArgument, "Set either 'prompt' (non-empty) or 'chat'."));
        }

        generation = generation.WithPrefixBlocks(context.RequestHeaders.GetValue(GpuFleetHeaders.PrefixBlocks));
        var admission = api.Engine.Submit(generation, context.CancellationToken);
        if (!admission.Accepted)
        {
            throw ToGrpc(api.ToError(admission.Rejection!));
        }

        var toolCalls = false;
        await foreach (var item in admission.Stream!.ReadAllAsync(context.CancellationToken))
        {
            switch (item)
            {
                case TokenEvent token:
                    var delta = new TokenDelta();
                    delta.TokenIds.Add(token.Token);
                    toolCalls |= Apply(delta, parser is null ? [new ContentDelta(token.Text)] : parser.Push(token.Text));
                    await writer.WriteAsync(new GenerateResponse { Delta = delta }, context.CancellationToken);
                    break;
                case CompletionEvent done:
                    IReadOnlyList<ChatOutputEvent> events = parser is null ? [new ContentDelta(done.TrailingText)] : [.. parser.Push(done.TrailingText), .. parser.Complete()];
                    var tail = new TokenDelta();
                    toolCalls |= Apply(tail, events);
                    if (tail.Text.Length > 0 || tail.ReasoningText.Length > 0 || tail.ToolCalls.Count > 0)
                    {
                        await writer.WriteAsync(new GenerateResponse { Delta = tail }, context.CancellationToken);
                    }

                    switch (done.Reason)
                    {
                        case FinishReason.Error:
                            throw new RpcException(new Status(StatusCode.Internal, done.Error ?? "The model failed."));
                        case FinishReason.Interrupted:
                            throw new RpcException(new Status(StatusCode.Unavailable, done.Error ?? "The worker stopped."));
                    }

                    await writer.WriteAsync(new GenerateResponse { Final = Final(done, toolCalls) }, context.CancellationToken);
                    break;
            }
        }
    }

    private static GenerateFinal Final(CompletionEvent done, bool toolCalls) => new()
    {
        FinishReason = done.Reason == FinishReason.Cancelled ? "cancelled" : ResponseJson.FinishReason(done.Reason, toolCalls),
        Usage = new Usage
        {
            PromptTokens = (uint)done.Usage.PromptTokens,
            CompletionTokens = (uint)done.Usage.CompletionTokens,
            CachedPromptTokens = (uint)done.Usage.CachedPromptTokens,
            TimeToFirstTokenMs = done.Usage.TimeToFirstToken.TotalMilliseconds,
            TotalMs = done.Usage.TotalTime.TotalMilliseconds,
        },
    };

    /// <summary>Adds parsed events to a delta; true when one of them is a tool call.</summary>
    private static bool Apply(TokenDelta delta, IEnumerable<ChatOutputEvent> events)
    {
        var toolCall = false;
        foreach (var e in events)
        {
            switch (e)
            {
                case ContentDelta c:
                    delta.Text += c.Text;
                    break;
                case ReasoningDelta r:
                    delta.ReasoningText += r.Text;
                    break;
                case ToolCallParsed call:
                    delta.ToolCalls.Add(new Contracts.V1.ToolCall { Id = call.Id, Name = call.Name, ArgumentsJson = call.ArgumentsJson });
                    toolCall = true;
                    break;
            }
        }

        return toolCall;
    }

    private static SamplingParameters Sampling(SamplingParams? p) => p is null ? new SamplingParameters() : new SamplingParameters
    {
        Temperature = p.HasTemperature ? p.Temperature : 1.0f,
        TopP = p.HasTopP ? p.TopP : 1.0f,
        TopK = p.HasTopK ? p.TopK : 0,
        MinP = p.HasMinP ? p.MinP : 0,
        RepetitionPenalty = p.HasRepetitionPenalty ? p.RepetitionPenalty : 1.0f,
        PresencePenalty = p.HasPresencePenalty ? p.PresencePenalty : 0,
        FrequencyPenalty = p.HasFrequencyPenalty ? p.FrequencyPenalty : 0,
        Seed = p.HasSeed ? unchecked((uint)p.Seed) : null,
    };

    private static ChatMessage ToMessage(Contracts.V1.ChatMessage m) => new(m.Role, m.Content)
    {
        Name = m.Name.Length > 0 ? m.Name : null,
        ToolCallId = m.ToolCallId.Length > 0 ? m.ToolCallId : null,
        ReasoningContent = m.ReasoningContent.Length > 0 ? m.ReasoningContent : null,
        ToolCalls = m.ToolCalls.Count > 0 ? [.. m.ToolCalls.Select(c => new ChatToolCall(c.Id, c.Name, c.ArgumentsJson))] : null,
    };

    private static ChatTool ToTool(Tool t)
    {
        JsonElement? parameters = null;
        if (t.ParametersJson.Length > 0)
        {
            // Checked as strictly as an HTTP body, since the chat format reads the schema's strings.
            if (JsonRequestBody.Problem(System.Text.Encoding.UTF8.GetBytes(t.ParametersJson)) is not null)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"The parameters of tool '{JsonRequestBody.Quote(t.Name)}' are not valid JSON."));
            }

            using var document = JsonDocument.Parse(t.ParametersJson, new JsonDocumentOptions { MaxDepth = JsonRequestBody.MaxDepth });
            parameters = document.RootElement.Clone();
        }

        return new ChatTool(t.Name, t.Description.Length > 0 ? t.Description : null, parameters);
    }

    /// <summary>The gRPC status for an API error: the same decision as HTTP, in gRPC's codes.</summary>
    private static RpcException ToGrpc(OpenAiException error)
    {
        var trailers = new Metadata();
        if (error.RetryAfterSeconds is { } seconds)
        {
            trailers.Add(RetryAfter.GrpcPushbackHeader, RetryAfter.GrpcPushback(seconds));
        }

        // The worker's 404 is a model it does not serve (the method exists): NOT_FOUND, where the gateway's is UNIMPLEMENTED.
        var code = GrpcStatusMapping.FromHttpStatus(error.Status, notFound: StatusCode.NotFound);
        return new RpcException(new Status(code, error.Message), trailers);
    }
}
