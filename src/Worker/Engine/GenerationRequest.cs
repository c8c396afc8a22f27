namespace GpuFleet.Worker.Engine;

/// <summary>One generation: a tokenized prompt and how to continue it.</summary>
internal sealed record GenerationRequest
{
    public required IReadOnlyList<int> PromptTokens { get; init; }

    public int MaxTokens { get; init; } = 256;

    public SamplingParameters Sampling { get; init; } = new();

    /// <summary>Text sequences that end the generation; they are not included in the output.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>A GBNF grammar (start rule <c>root</c>) the output must follow, e.g. to force a tool call.</summary>
    public string? Grammar { get; init; }

    /// <summary>Keep generating past end-of-generation tokens (benchmarks: every stream produces MaxTokens).</summary>
    public bool IgnoreEndOfGeneration { get; init; }

    /// <summary>
    /// The gateway's prefix blocks of this prompt (keyed hashes, in order) with the prompt token each ends at:
    /// opaque to the engine, which reports the ones it still holds so the gateway's affinity index stays true.
    /// </summary>
    public IReadOnlyList<PrefixBlock> PrefixBlocks { get; init; } = [];

    /// <summary>
    /// Leading prompt tokens other conversations are likely to start with too (the system turn: system prompt and
    /// tools); 0 = none. On models whose cache is kept as snapshots (qwen35) the prefill stops there once to snapshot it.
    /// </summary>
    public int SharedPrefixLength { get; init; }

    /// <summary>
    /// Leading prompt tokens that conversations declaring the same tools share whatever their system prompt (the tools
    /// open the system turn); 0 = none. Taken as a snapshot point like <see cref="SharedPrefixLength"/>.
    /// </summary>
    public int ToolsPrefixLength { get; init; }

    /// <summary>
    /// Prompt tokens before the generation prompt (the end of the last complete message); 0 = unknown. The next turn of
    /// the conversation extends exactly this prefix (the chat template re-renders the opened assistant turn), so that is
    /// where a snapshot of the prompt is taken; without it, at the token before the prompt's last.
    /// </summary>
    public int TurnPrefixLength { get; init; }
}

/// <summary>One gateway prefix block: its keyed hash and the (estimated) prompt token position where it ends.</summary>
internal readonly record struct PrefixBlock(ulong Hash, int TokenEnd);

internal enum FinishReason
{
    /// <summary>An end-of-generation token or a stop sequence.</summary>
    Stop,
    /// <summary>MaxTokens reached, or the end of the slot's context.</summary>
    Length,
    /// <summary>The caller cancelled.</summary>
    Cancelled,
    /// <summary>The engine failed this request (e.g. llama_decode failed for its batch).</summary>
    Error,
    /// <summary>The engine stopped (worker shutdown) before the request finished; another worker can serve it.</summary>
    Interrupted,
}

/// <summary>Token counts and timings of one finished generation.</summary>
internal sealed record GenerationUsage(
    int PromptTokens,
    int CachedPromptTokens,
    int CompletionTokens,
    TimeSpan QueueTime,
    TimeSpan TimeToFirstToken,
    TimeSpan TotalTime);

/// <summary>What a generation stream yields.</summary>
internal abstract record GenerationEvent;

/// <summary>A sampled token and the text it releases (empty while a UTF-8 character or a possible stop sequence is incomplete).</summary>
internal sealed record TokenEvent(int Token, string Text) : GenerationEvent
{
    /// <summary>The scheduler step that produced this token (orders tokens across streams, for diagnostics and tests).</summary>
    internal long Step { get; init; }
}

/// <summary>The last event: why it ended, usage, and any text still held back.</summary>
internal sealed record CompletionEvent(FinishReason Reason, GenerationUsage Usage, string TrailingText, string? Error = null) : GenerationEvent;

/// <summary>Why a request was refused before any work.</summary>
internal enum RejectionReason
{
    /// <summary>The admission queue is full: retry later (HTTP 429 / RESOURCE_EXHAUSTED).</summary>
    Overloaded,
    /// <summary>Prompt plus at least one generated token does not fit the slot's context.</summary>
    PromptTooLong,
    /// <summary>Bad parameters or tokens.</summary>
    InvalidRequest,
    /// <summary>The engine is stopping.</summary>
    ShuttingDown,
}

/// <summary>A refusal with a message fit for the client.</summary>
internal sealed record Rejection(RejectionReason Reason, string Message);

/// <summary>The result of <see cref="InferenceEngine.Submit"/>: a stream, or a rejection.</summary>
internal sealed record Admission(GenerationStream? Stream, Rejection? Rejection)
{
    public bool Accepted => Stream is not null;
}
