namespace GpuFleet.Worker.Engine;

/// <summary>
/// The checks every engine applies before accepting a request, so that the llama.cpp engine and the
/// simulated one refuse the same requests with the same messages.
/// </summary>
internal static class RequestValidation
{
    /// <summary>A refusal naming every problem, <see cref="RejectionReason.PromptTooLong"/>, or null when the request is acceptable.</summary>
    public static Rejection? Validate(GenerationRequest request, int vocabularySize, int contextPerRequest)
    {
        var prompt = request.PromptTokens;
        if (prompt is null || prompt.Count == 0)
        {
            return new Rejection(RejectionReason.InvalidRequest, "The prompt is empty.");
        }

        var errors = new List<string>(request.Sampling?.Validate() ?? ["sampling parameters are missing."]);
        if (request.MaxTokens < 1)
        {
            errors.Add($"max_tokens must be at least 1, not {request.MaxTokens}.");
        }

        foreach (var token in prompt)
        {
            if (token < 0 || token >= vocabularySize)
            {
                errors.Add($"prompt token {token} is outside the vocabulary (0..{vocabularySize - 1}).");
                break;
            }
        }

        if (request.StopSequences is null || request.StopSequences.Any(string.IsNullOrEmpty))
        {
            errors.Add("stop sequences must be non-empty strings.");
        }

        if (errors.Count > 0)
        {
            return new Rejection(RejectionReason.InvalidRequest, string.Join(" ", errors));
        }

        // At least one generated token must fit after the prompt.
        if (prompt.Count >= contextPerRequest)
        {
            return new Rejection(RejectionReason.PromptTooLong,
                $"The prompt has {prompt.Count} tokens, but this worker's context holds {contextPerRequest} tokens per request (prompt and completion).");
        }

        return null;
    }

    /// <summary>The refusal of a request beyond <c>Slots + QueueCapacity</c>, or of any request while stopping.</summary>
    public static Rejection Refusal(RejectionReason reason, EngineOptions options) => reason == RejectionReason.Overloaded
        ? new Rejection(reason, $"The worker is at capacity ({options.Slots} running, {options.QueueCapacity} waiting); retry shortly.")
        : new Rejection(reason, "The worker is shutting down.");
}
