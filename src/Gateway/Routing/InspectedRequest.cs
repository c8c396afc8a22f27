namespace GpuFleet.Gateway.Routing;

/// <summary>
/// What the gateway learned from one OpenAI request body before routing it: the model, streaming, the
/// keyed prefix-block chain of its canonical prompt and a token estimate. Never holds prompt text.
/// </summary>
internal sealed class InspectedRequest
{
    public required string Model { get; init; }

    public bool Stream { get; init; }

    /// <summary>Bytes of the canonical prompt (its block chain covers the full blocks of it).</summary>
    public long PromptBytes { get; init; }

    /// <summary>
    /// Where the last assistant message starts in the canonical prompt (0: there is none): the part before it is what this
    /// conversation's previous turn sent as its prompt, so a worker holding that much of the chain served that turn.
    /// </summary>
    public long HistoryBytes { get; init; }

    /// <summary>Keyed chained hashes of the canonical prompt's full blocks, in order.</summary>
    public IReadOnlyList<ulong> Blocks { get; init; } = [];

    /// <summary>The requested completion budget, when given.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>
    /// Tokens this request may cost at most: the prompt estimate plus the completion budget, saturated at
    /// <see cref="int.MaxValue"/>. Both are client numbers (OpenAI accepts a max_tokens far beyond any context, and
    /// the worker clamps it), so their sum must not wrap around into a negative cost.
    /// </summary>
    public int TokenEstimate(int promptTokens) => (int)Math.Min(int.MaxValue, (long)Math.Max(0, promptTokens) + (MaxTokens ?? 0));

    /// <summary>A keyed hash of the session (x-session-id header or the OpenAI <c>user</c> field), when given.</summary>
    public string? SessionKey { get; init; }
}
