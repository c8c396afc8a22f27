namespace GpuFleet.Worker.Engine.Simulated;

/// <summary>How the simulated engine answers (<c>Worker:SimulatedReplyTokens</c>, <c>Worker:SimulatedTokenDelayMilliseconds</c>).</summary>
internal sealed record SimulatedReply
{
    /// <summary>Tokens of an answer before its simulated end of generation; default 16 (OpenAI's default for completions).</summary>
    public int Tokens { get; init; } = 16;

    /// <summary>A pause before each token (a timer, no CPU), so that a request holds its slot for a while; zero answers at once.</summary>
    public TimeSpan TokenDelay { get; init; } = TimeSpan.Zero;

    /// <summary>Every problem with these settings.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Tokens < 1)
        {
            errors.Add($"The simulated reply must have at least 1 token, not {Tokens}.");
        }

        if (TokenDelay < TimeSpan.Zero)
        {
            errors.Add($"The simulated token delay must not be negative, not {TokenDelay}.");
        }

        return errors;
    }
}
