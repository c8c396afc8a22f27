using System.Globalization;
using System.Text;
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
    /// <summary>
    /// Renders and tokenizes the prompt: 400 / INVALID_ARGUMENT material on a <see cref="ChatFormatException"/>, an
    /// <see cref="OpenAiException"/> for too many messages or a prompt that cannot fit the context.
    /// </summary>
    public static (GenerationRequest Request, QwenOutputParser Parser) Prepare(
        WorkerApi api, IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatTool> tools, ToolChoiceMode toolChoice, string? toolChoiceName,
        bool jsonObject, bool? enableThinking, GenerationParameters parameters)
    {
        if (messages.Count > api.Options.MaxMessages)
        {
            throw OpenAiException.BadRequest(
                $"The request has {messages.Count} messages; this worker accepts at most {api.Options.MaxMessages}.", "messages", "too_many_messages");
        }

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
        var tokens = FitContext(api, api.SpecialTokens.Tokenize(prompt, api.Engine.ContextPerRequest));
        var (systemTurn, turnPrefix) = MessageBoundaries(api, prompt, tokens);
        var toolsPrefix = safeTools.Count > 0 ? TokensWithin(api, tokens, prompt, QwenChatFormat.ToolsEnd(prompt)) : 0;
        var request = api.BuildRequest(tokens, parameters, grammar) with
        {
            SharedPrefixLength = systemTurn,
            ToolsPrefixLength = toolsPrefix < systemTurn ? toolsPrefix : 0,
            TurnPrefixLength = turnPrefix,
        };
        return (request, new QwenOutputParser(thinking != false, offered.Count > 0, offered));
    }

    /// <summary>A raw prompt (text completions, gRPC prompt) tokenized with special parsing, refused like a chat prompt when it cannot fit.</summary>
    public static int[] TokenizePrompt(WorkerApi api, string text) =>
        FitContext(api, api.SpecialTokens.TokenizeText(text, api.Engine.ContextPerRequest));

    // Tokenization stopped past the context: the prompt cannot fit, and its exact length is not worth the time (a
    // prompt many times the context would otherwise be tokenized whole just to be refused).
    private static int[] FitContext(WorkerApi api, int[] tokens) => tokens.Length <= api.Engine.ContextPerRequest
        ? tokens
        : throw api.ToError(new Rejection(RejectionReason.PromptTooLong, string.Create(CultureInfo.InvariantCulture,
            $"The prompt has more than {api.Engine.ContextPerRequest} tokens, but this worker's context holds {api.Engine.ContextPerRequest} tokens per request (prompt and completion).")));

    /// <summary>
    /// How many leading tokens lie wholly within the prompt's first <paramref name="characters"/> characters: their pieces
    /// add up to the text's bytes. A token spanning the point is left out, so the count is a point every prompt with the
    /// same text before it tokenizes alike up to.
    /// </summary>
    private static int TokensWithin(WorkerApi api, int[] tokens, string prompt, int characters)
    {
        if (characters <= 0)
        {
            return 0;
        }

        var budget = Encoding.UTF8.GetByteCount(prompt.AsSpan(0, characters));
        var model = api.Engine.Model;
        Span<byte> piece = stackalloc byte[256];
        var bytes = 0;
        for (var i = 0; i < tokens.Length; i++)
        {
            var length = model.TokenToPiece(tokens[i], piece);
            if (length < 0 || bytes + length > budget)
            {
                return i;
            }

            bytes += length;
        }

        return tokens.Length;
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
