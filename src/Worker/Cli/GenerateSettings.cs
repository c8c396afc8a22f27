namespace GpuFleet.Worker.Cli;

/// <summary>What <c>generate</c> was asked for (defaults are the parser's).</summary>
internal sealed record GenerateSettings(
    string ModelPath, string Prompt, int MaxTokens, int Streams, int Slots, int ContextSize, int GpuLayers, float Temperature, int Seed, string? NativeDirectory);
