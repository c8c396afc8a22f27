using GpuFleet.Testing;
using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Tests.Engine;

/// <summary>Everything one generation stream produced.</summary>
internal sealed record CollectedGeneration(IReadOnlyList<int> Tokens, string Text, CompletionEvent Completion)
{
    public FinishReason Reason => Completion.Reason;

    public GenerationUsage Usage => Completion.Usage;
}

/// <summary>Reads an engine's generation streams to their end in tests.</summary>
internal static class GenerationCollector
{
    /// <summary>Reads a stream to its end (bounded by the default test timeout).</summary>
    public static async Task<CollectedGeneration> CollectAsync(this GenerationStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var tokens = new List<int>();
        var text = new System.Text.StringBuilder();
        CompletionEvent? completion = null;
        await foreach (var item in stream.ReadAllAsync(TestTimeouts.Token()))
        {
            switch (item)
            {
                case TokenEvent token:
                    tokens.Add(token.Token);
                    text.Append(token.Text);
                    break;
                case CompletionEvent done:
                    completion = done;
                    text.Append(done.TrailingText);
                    break;
            }
        }

        return new CollectedGeneration(tokens, text.ToString(), completion ?? throw new InvalidOperationException("The stream ended without a completion event."));
    }

    /// <summary>Submits and collects; fails the test if the request is refused.</summary>
    public static Task<CollectedGeneration> RunAsync(this IInferenceEngine engine, GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(engine);
        var admission = engine.Submit(request, cancellationToken);
        if (!admission.Accepted)
        {
            throw new InvalidOperationException($"Refused: {admission.Rejection}");
        }

        return admission.Stream!.CollectAsync();
    }
}
