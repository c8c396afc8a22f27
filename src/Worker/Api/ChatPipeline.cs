using GpuFleet.Worker.Api.OpenAi;
using GpuFleet.Worker.Chat;
using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Api;

/// <summary>
/// Turns a conversation into an engine request and a matching output parser; shared by the OpenAI chat
/// endpoint and the gRPC Generate call so that both render, constrain and parse identically.
/// </summary>
internal static class ChatPipeline
{
    /// <summary>Renders the prompt (400 / INVALID_ARGUMENT material on a <see cref="ChatFormatException"/>).</summary>
    public static (GenerationRequest Request, QwenOutputParser Parser) Prepare(
        WorkerApi api, IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatTool> tools, ToolChoiceMode toolChoice, string? toolChoiceName,
        bool jsonObject, bool? enableThinking, GenerationParameters parameters)
    {
        // A forced tool call or JSON object starts at the first output token, so there is no room for a
        // <think> block: such requests render with thinking switched off.
        var forced = toolChoice is ToolChoiceMode.Required or ToolChoiceMode.Named;
        var thinking = forced || jsonObject ? false : enableThinking ?? api.Options.EnableThinking;
        var offered = toolChoice == ToolChoiceMode.None ? [] : tools;
        var (safeMessages, safeTools) = api.SpecialTokens.Neutralize(messages, offered);
        var prompt = QwenChatFormat.Render(safeMessages, new ChatRenderOptions { Tools = safeTools.Count > 0 ? safeTools : null, EnableThinking = thinking });
        var grammar = forced ? OutputGrammars.ToolCall(offered, toolChoiceName)
            : jsonObject ? OutputGrammars.JsonObject()
            : null;
        var tokens = api.SpecialTokens.Tokenize(prompt);
        var (systemTurn, turnPrefix) = MessageBoundaries(api, prompt, tokens);
        var request = api.BuildRequest(tokens, parameters, grammar) with { SharedPrefixLength = systemTurn, TurnPrefixLength = turnPrefix };
        return (request, new QwenOutputParser(thinking != false, offered.Count > 0, offered));
    }

    /// <summary>
    /// Message boundaries in the prompt's tokens, where snapshots are worth taking: the end of the system turn (system
    /// prompt and tools, which every conversation of an agent or team starts with; 0 without one) and the end of the
    /// last complete message (before the generation prompt, which the next turn re-renders). Messages start with
    /// <c>&lt;|im_start|&gt;</c>, and message text cannot contain that token (the special-token guard neutralizes it).
    /// </summary>
    private static (int SystemTurn, int TurnPrefix) MessageBoundaries(WorkerApi api, string prompt, int[] tokens)
    {
        var imStart = api.MessageStartToken;
        if (imStart < 0)
        {
            return (0, 0);
        }

        var second = Array.IndexOf(tokens, imStart, 1);
        var systemTurn = prompt.StartsWith("<|im_start|>system", StringComparison.Ordinal) && second > 0 ? second : 0;
        var last = Array.LastIndexOf(tokens, imStart);
        return (systemTurn, last > 0 ? last : 0);
    }
}
