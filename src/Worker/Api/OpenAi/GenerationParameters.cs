using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Api.OpenAi;

/// <summary>The request fields shared by chat and text completions: sampling, limits, stop and streaming.</summary>
internal sealed record GenerationParameters(
    string Model,
    bool Stream,
    bool IncludeUsage,
    int? MaxTokens,
    SamplingParameters Sampling,
    IReadOnlyList<string> Stop,
    bool IgnoreEos)
{
    private const int MaxStopSequences = 16;

    public static GenerationParameters Parse(JsonFields body, int defaultMaxTokens)
    {
        var model = body.RequiredString("model");
        var stream = body.Bool("stream") ?? false;
        var includeUsage = body.Object("stream_options")?.Bool("include_usage") ?? false;
        var n = body.Integer("n", 1, 128) ?? 1;
        if (n != 1)
        {
            throw OpenAiException.BadRequest("Only n = 1 is supported: send several requests for several choices.", "n", "unsupported_value");
        }

        if (body.Bool("logprobs") == true || body.Has("top_logprobs"))
        {
            throw OpenAiException.BadRequest("logprobs are not supported by this server.", "logprobs", "unsupported_parameter");
        }

        // max_completion_tokens is the newer name of max_tokens.
        var maxTokens = body.Integer("max_completion_tokens", 1, int.MaxValue) ?? body.Integer("max_tokens", 1, int.MaxValue) ?? defaultMaxTokens;
        var seed = body.Integer("seed", long.MinValue, long.MaxValue);
        var sampling = new SamplingParameters
        {
            Temperature = (float)(body.Number("temperature", 0, 2) ?? 1.0),
            TopP = (float)(body.Number("top_p", 0, 1) ?? 1.0),
            TopK = (int)(body.Integer("top_k", 0, int.MaxValue) ?? 0),
            MinP = (float)(body.Number("min_p", 0, 1) ?? 0),
            PresencePenalty = (float)(body.Number("presence_penalty", -2, 2) ?? 0),
            FrequencyPenalty = (float)(body.Number("frequency_penalty", -2, 2) ?? 0),
            RepetitionPenalty = (float)(body.Number("repetition_penalty", 0.01, 10) ?? 1.0),
            Seed = seed is { } s ? unchecked((uint)s) : null,
        };
        if (sampling.TopP == 0)
        {
            throw OpenAiException.BadRequest("'top_p' must be greater than 0.", "top_p", "invalid_value");
        }

        // Not used here (the gateway keys sessions by it), but typed as OpenAI types it, so that the gateway and the
        // worker refuse the same bodies.
        body.String("user");

        // ignore_eos: the vLLM / llama-server extension for benchmarks (generate exactly max_tokens).
        var ignoreEos = body.Bool("ignore_eos") ?? false;
        return new GenerationParameters(model, stream, includeUsage, maxTokens == 0 ? null : (int)maxTokens, sampling, ParseStop(body), ignoreEos);
    }

    private static List<string> ParseStop(JsonFields body)
    {
        var stop = body.Raw("stop");
        if (stop is not { } value)
        {
            return [];
        }

        if (value.ValueKind == System.Text.Json.JsonValueKind.String)
        {
            var single = value.GetString()!;
            return single.Length == 0 ? [] : [single];
        }

        if (value.ValueKind != System.Text.Json.JsonValueKind.Array)
        {
            throw body.Wrong("stop", "a string or an array of strings");
        }

        var list = new List<string>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != System.Text.Json.JsonValueKind.String)
            {
                throw body.Wrong("stop", "a string or an array of strings");
            }

            if (item.GetString() is { Length: > 0 } text)
            {
                list.Add(text);
            }
        }

        return list.Count <= MaxStopSequences
            ? list
            : throw OpenAiException.BadRequest($"At most {MaxStopSequences} stop sequences are supported.", "stop", "invalid_value");
    }
}
