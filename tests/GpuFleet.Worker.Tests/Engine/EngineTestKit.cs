using GpuFleet.Worker.Engine;
using GpuFleet.Worker.LlamaCpp;

namespace GpuFleet.Worker.Tests.Engine;

internal static class EngineTestKit
{
    public const string System = "You are a helpful assistant that answers briefly.";

    public static int[] ChatPrompt(LlamaModel model, string user, string system = System) =>
        model.Tokenize($"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n");

    public static int[] Continue(LlamaModel model, IEnumerable<int> previousPrompt, IEnumerable<int> reply, string nextUser) =>
        [.. previousPrompt, .. reply, .. model.Tokenize($"<|im_end|>\n<|im_start|>user\n{nextUser}<|im_end|>\n<|im_start|>assistant\n")];

    public static GenerationRequest Greedy(int[] prompt, int maxTokens = 16) => new()
    {
        PromptTokens = prompt,
        MaxTokens = maxTokens,
        Sampling = SamplingParameters.Greedy,
        IgnoreEndOfGeneration = true,
    };

    public static Task<InferenceEngine> StartAsync(LlamaModel model, int slots = 4, int contextSize = 4096, int queue = 16, long hostCacheBytes = 64 << 20, int batchSize = 512, bool prefixReuse = true, bool unifiedKv = true) =>
        InferenceEngine.StartAsync(model, new EngineOptions
        {
            Slots = slots,
            ContextSize = contextSize,
            QueueCapacity = queue,
            HostCacheBytes = hostCacheBytes,
            BatchSize = batchSize,
            Threads = 2,
            PrefixReuse = prefixReuse,
            UnifiedKv = unifiedKv,
        });
}
