namespace GpuFleet.Worker.Engine;

/// <summary>
/// Per-request sampling, applied through llama.cpp's sampler chain in this order: penalties, top-k,
/// top-p, min-p, temperature, then a seeded draw. A temperature of 0 means greedy (argmax after penalties).
/// Defaults follow the OpenAI API (temperature 1, top_p 1, no penalties).
/// </summary>
internal sealed record SamplingParameters
{
    public float Temperature { get; init; } = 1.0f;

    public float TopP { get; init; } = 1.0f;

    /// <summary>0 disables top-k.</summary>
    public int TopK { get; init; }

    /// <summary>0 disables min-p.</summary>
    public float MinP { get; init; }

    /// <summary>Multiplicative repetition penalty (llama.cpp style); 1 disables it.</summary>
    public float RepetitionPenalty { get; init; } = 1.0f;

    /// <summary>OpenAI presence penalty, -2..2.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>OpenAI frequency penalty, -2..2.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>How many recent tokens the penalties look at; 0 turns them off.</summary>
    public int PenaltyLastN { get; init; } = 64;

    /// <summary>Seed of the draw; null picks a random one.</summary>
    public uint? Seed { get; init; }

    public static SamplingParameters Greedy { get; } = new() { Temperature = 0 };

    internal bool HasPenalties => RepetitionPenalty != 1.0f || PresencePenalty != 0f || FrequencyPenalty != 0f;

    /// <summary>Every problem with these parameters, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!float.IsFinite(Temperature) || Temperature < 0 || Temperature > 100)
        {
            errors.Add($"temperature must be between 0 and 100, not {Temperature}.");
        }

        if (!float.IsFinite(TopP) || TopP <= 0 || TopP > 1)
        {
            errors.Add($"top_p must be in (0, 1], not {TopP}.");
        }

        if (TopK < 0)
        {
            errors.Add($"top_k must be 0 (off) or positive, not {TopK}.");
        }

        if (!float.IsFinite(MinP) || MinP < 0 || MinP > 1)
        {
            errors.Add($"min_p must be in [0, 1], not {MinP}.");
        }

        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0 || RepetitionPenalty > 10)
        {
            errors.Add($"repetition_penalty must be in (0, 10], not {RepetitionPenalty}.");
        }

        if (!float.IsFinite(PresencePenalty) || PresencePenalty < -2 || PresencePenalty > 2)
        {
            errors.Add($"presence_penalty must be between -2 and 2, not {PresencePenalty}.");
        }

        if (!float.IsFinite(FrequencyPenalty) || FrequencyPenalty < -2 || FrequencyPenalty > 2)
        {
            errors.Add($"frequency_penalty must be between -2 and 2, not {FrequencyPenalty}.");
        }

        if (PenaltyLastN < 0)
        {
            errors.Add($"penalty_last_n must not be negative, not {PenaltyLastN}.");
        }

        return errors;
    }
}
