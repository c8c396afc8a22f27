using GpuFleet.Contracts.V1;
using Grpc.Core;

namespace GpuFleet.Contracts.Tests.Interop;

/// <summary>
/// A canned gpufleet.v1.Inference/Generate: it describes the request it received in its deltas, so a client in
/// another language can check that oneofs, optional fields and nested messages survived the trip.
/// </summary>
internal sealed class FakeInference : Inference.InferenceBase
{
    public static string Describe(GenerateRequest request)
    {
        var sampling = request.Sampling ?? new SamplingParams();
        var input = request.InputCase == GenerateRequest.InputOneofCase.Chat
            ? $"chat:{request.Chat.Messages.Count}:{request.Chat.Messages[0].Role}:{request.Chat.Tools.Count}:{(request.Chat.HasEnableThinking ? request.Chat.EnableThinking.ToString() : "unset")}"
            : $"prompt:{request.Prompt}";
        var temperature = sampling.HasTemperature ? sampling.Temperature.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unset";
        var topP = sampling.HasTopP ? "set" : "unset";
        var seed = sampling.HasSeed ? sampling.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture) : "unset";
        return $"{input}|temperature={temperature}|top_p={topP}|seed={seed}|max_tokens={request.MaxTokens}|stop={request.Stop.Count}|model={request.Model}";
    }

    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> writer, ServerCallContext context)
    {
        await writer.WriteAsync(new GenerateResponse { Delta = new TokenDelta { Text = Describe(request), TokenIds = { 1, 2 } } }, context.CancellationToken);
        await writer.WriteAsync(new GenerateResponse
        {
            Delta = new TokenDelta { ReasoningText = "thinking", ToolCalls = { new ToolCall { Id = "call_1", Name = "lookup", ArgumentsJson = "{}" } } },
        }, context.CancellationToken);
        await writer.WriteAsync(new GenerateResponse
        {
            Final = new GenerateFinal
            {
                FinishReason = "tool_calls",
                Usage = new Usage { PromptTokens = 7, CompletionTokens = 3, CachedPromptTokens = 4, TimeToFirstTokenMs = 12.5, TotalMs = 40.25 },
            },
        }, context.CancellationToken);
    }
}
