using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>A llama.cpp sampler chain; it remembers accepted tokens (for penalties) and its random state.</summary>
internal sealed class LlamaSampler : IDisposable
{
    private const uint RandomSeed = 0xFFFFFFFF; // LLAMA_DEFAULT_SEED: llama.cpp picks one

    private readonly SafeLlamaSamplerHandle _chain;

    private LlamaSampler(SafeLlamaSamplerHandle chain) => _chain = chain;

    /// <summary>
    /// Builds grammar -> penalties -> top-k -> top-p -> min-p -> temperature -> draw, or greedy when
    /// temperature is 0. Throws <see cref="ArgumentException"/> when the GBNF grammar does not parse.
    /// </summary>
    public static LlamaSampler Create(
        LlamaModel model, float temperature, float topP, int topK, float minP,
        float repetitionPenalty, float presencePenalty, float frequencyPenalty, int penaltyLastN, uint? seed, string? grammar = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var vocabularySize = model.VocabularySize;
        var chainParams = LlamaNative.SamplerChainDefaultParams();
        chainParams.NoPerf = 1;
        var chain = new SafeLlamaSamplerHandle(LlamaNative.SamplerChainInit(chainParams));
        if (chain.IsInvalid)
        {
            throw new LlamaNativeException("llama_sampler_chain_init failed.");
        }

        var handle = chain.DangerousGetHandle();
        // The chain takes ownership of each sampler added to it.
        if (grammar is not null)
        {
            var grammarSampler = LlamaNative.SamplerInitGrammar(model.Vocabulary, grammar, "root");
            if (grammarSampler == 0)
            {
                chain.Dispose();
                throw new ArgumentException("The grammar could not be parsed (GBNF with a 'root' rule expected).", nameof(grammar));
            }

            LlamaNative.SamplerChainAdd(handle, grammarSampler);
        }

        if (repetitionPenalty != 1.0f || presencePenalty != 0f || frequencyPenalty != 0f)
        {
            LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitPenalties(vocabularySize, penaltyLastN, repetitionPenalty, frequencyPenalty, presencePenalty));
        }

        if (temperature <= 0f)
        {
            LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitGreedy());
            return new LlamaSampler(chain);
        }

        if (topK > 0)
        {
            LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitTopK(Math.Min(topK, vocabularySize)));
        }

        if (topP < 1.0f)
        {
            LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitTopP(topP, 1));
        }

        if (minP > 0f)
        {
            LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitMinP(minP, 1));
        }

        LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitTemp(temperature));
        LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitDist(seed ?? RandomSeed));
        return new LlamaSampler(chain);
    }

    /// <summary>
    /// Samples from the logits of batch index <paramref name="batchIndex"/> and accepts the token. Does what
    /// llama_sampler_sample does, except that a chain which allows no token throws
    /// <see cref="LlamaNativeException"/> here instead of aborting the process, and that the same path
    /// serves fixed logits in tests.
    /// </summary>
    public int Sample(LlamaContext context, int batchIndex)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Sample(context.GetLogits(batchIndex), context.SamplingCandidates);
    }

    /// <summary>
    /// Runs the chain over one logits row (llama_sampler_apply), accepts the chosen token into the chain's
    /// history (penalties, grammar) and returns it; <paramref name="candidates"/> is scratch of at least
    /// the row's length.
    /// </summary>
    internal unsafe int Sample(ReadOnlySpan<float> logits, LlamaTokenData[] candidates)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentOutOfRangeException.ThrowIfLessThan(candidates.Length, logits.Length);
        for (var token = 0; token < logits.Length; token++)
        {
            candidates[token] = new LlamaTokenData { Id = token, Logit = logits[token] };
        }

        fixed (LlamaTokenData* data = candidates)
        {
            var array = new LlamaTokenDataArray { Data = data, Size = (nuint)logits.Length, Selected = -1 };
            var chain = _chain.DangerousGetHandle();
            LlamaNative.SamplerApply(chain, &array);
            // Samplers may reorder and shrink the array in place, so the choice is read through it. A choice
            // at -inf means nothing was allowed (a grammar with no way on): accepting it would abort in native code.
            if (array.Selected < 0 || (ulong)array.Selected >= array.Size || float.IsNegativeInfinity(array.Data[array.Selected].Logit))
            {
                throw new LlamaNativeException("The sampler chain allows no token here.");
            }

            var chosen = array.Data[array.Selected].Id;
            LlamaNative.SamplerAccept(chain, chosen);
            return chosen;
        }
    }

    public void Dispose() => _chain.Dispose();
}
