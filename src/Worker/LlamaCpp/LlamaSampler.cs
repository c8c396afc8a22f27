using System.Numerics;
using System.Runtime.InteropServices;
using GpuFleet.Worker.LlamaCpp.Native;

namespace GpuFleet.Worker.LlamaCpp;

/// <summary>A llama.cpp sampler chain; it remembers accepted tokens (for penalties) and its random state.</summary>
internal sealed class LlamaSampler : IDisposable
{
    private const uint RandomSeed = 0xFFFFFFFF; // LLAMA_DEFAULT_SEED: llama.cpp picks one

    private readonly SafeLlamaSamplerHandle _chain;

    /// <summary>
    /// The chain is llama.cpp's greedy sampler alone (no grammar, no penalties): its choice is the first highest logit and
    /// it keeps no history, so <see cref="Sample(ReadOnlySpan{float}, LlamaTokenData[])"/> reads the logits row directly
    /// instead of filling a candidate per vocabulary token (248k on Qwen3.5: about 3 MB written and read per token and
    /// stream) for the chain to scan.
    /// </summary>
    private readonly bool _greedyOnly;

    private LlamaSampler(SafeLlamaSamplerHandle chain, bool greedyOnly)
    {
        _chain = chain;
        _greedyOnly = greedyOnly;
    }

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

        var penalties = repetitionPenalty != 1.0f || presencePenalty != 0f || frequencyPenalty != 0f;
        if (penalties)
        {
            LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitPenalties(vocabularySize, penaltyLastN, repetitionPenalty, frequencyPenalty, presencePenalty));
        }

        if (temperature <= 0f)
        {
            LlamaNative.SamplerChainAdd(handle, LlamaNative.SamplerInitGreedy());
            return new LlamaSampler(chain, greedyOnly: grammar is null && !penalties);
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
        return new LlamaSampler(chain, greedyOnly: false);
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
        if (_greedyOnly)
        {
            return FirstHighest(logits);
        }

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

    /// <summary>
    /// What llama.cpp's greedy sampler picks: the first token with the highest logit (compared as numbers, so -0 equals 0).
    /// One vectorised pass finds the highest value, a second the first token that has it.
    /// </summary>
    internal static int FirstHighest(ReadOnlySpan<float> logits)
    {
        var lanes = Vector.IsHardwareAccelerated ? MemoryMarshal.Cast<float, Vector<float>>(logits) : [];
        var tail = lanes.Length * Vector<float>.Count;
        var highest = float.NegativeInfinity;
        if (lanes.Length > 0)
        {
            var max = lanes[0];
            foreach (var lane in lanes[1..])
            {
                max = Vector.Max(max, lane);
            }

            for (var lane = 0; lane < Vector<float>.Count; lane++)
            {
                highest = Math.Max(highest, max[lane]);
            }
        }

        foreach (var logit in logits[tail..])
        {
            highest = Math.Max(highest, logit);
        }

        // Every logit -inf (nothing allowed) or a NaN in the row: refuse, as the chain does, rather than pick.
        if (float.IsNegativeInfinity(highest) || float.IsNaN(highest))
        {
            throw new LlamaNativeException("The sampler chain allows no token here.");
        }

        var target = new Vector<float>(highest);
        var start = 0;
        while (start < lanes.Length && !Vector.EqualsAny(lanes[start], target))
        {
            start++;
        }

        for (var i = start * Vector<float>.Count; ; i++)
        {
            if (logits[i] == highest)
            {
                return i;
            }
        }
    }

    public void Dispose() => _chain.Dispose();
}
