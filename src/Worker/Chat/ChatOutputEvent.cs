namespace GpuFleet.Worker.Chat;

/// <summary>A piece of parsed model output.</summary>
internal abstract record ChatOutputEvent;

/// <summary>Answer text for the client.</summary>
internal sealed record ContentDelta(string Text) : ChatOutputEvent;

/// <summary>Text of the model's thinking (inside &lt;think&gt;).</summary>
internal sealed record ReasoningDelta(string Text) : ChatOutputEvent;

/// <summary>A complete tool call; <see cref="Index"/> counts calls of this generation from 0.</summary>
internal sealed record ToolCallParsed(int Index, string Id, string Name, string ArgumentsJson) : ChatOutputEvent;
