using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.Models;

/// <summary>A demo model built with the real Qwen3.5 tokenizer tokenizes exactly as llama.cpp's own vocabulary file does.</summary>
[Collection(LlamaCollection.Name)]
public sealed class QwenTokenizerTests(TestModels models)
{
    [Fact]
    public void Demo_model_matches_llama_cpp_tokenizer_test_vectors()
    {
        var model = models.Get(DemoArchitecture.Qwen35, qwenTokenizer: true);
        var files = TestModels.QwenTokenizer;
        // llama.cpp's tests/test-tokenizer-0 format: inputs separated by this line, one line of token ids per input.
        // The file ends with a separator, which closes the last input rather than opening an empty one.
        var inputs = File.ReadAllText(files.VocabularyPath + ".inp").Split("\n__ggml_vocab_test__\n")[..^1];
        var outputs = File.ReadAllLines(files.VocabularyPath + ".out");
        Assert.Equal(outputs.Length, inputs.Length);
        Assert.True(inputs.Length >= 40, $"{inputs.Length} test vectors");

        for (var i = 0; i < inputs.Length; i++)
        {
            var expected = outputs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
            var actual = model.Tokenize(inputs[i], addSpecial: false, parseSpecial: false);
            Assert.True(expected.SequenceEqual(actual), $"vector {i}: expected [{outputs[i]}], got [{string.Join(' ', actual)}]");
        }
    }

    [Fact]
    public void Chat_template_special_tokens_are_single_tokens_and_im_end_ends_a_turn()
    {
        var model = models.Get(DemoArchitecture.Qwen35, qwenTokenizer: true);

        Assert.Equal(151_936, model.VocabularySize);
        foreach (var special in new[] { "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>" })
        {
            Assert.Single(model.Tokenize(special));
        }

        Assert.True(model.IsEndOfGeneration(model.Tokenize("<|im_end|>").Single()));
        Assert.Equal(File.ReadAllText(TestModels.QwenTokenizer.ChatTemplatePath), model.ChatTemplate);
        const string Text = "<|im_start|>user\nRefactor src/Program.cs — keep the 你好 🚀 comments.<|im_end|>\n<|im_start|>assistant\n<think>\n";
        Assert.Equal(Text, model.Detokenize(model.Tokenize(Text)));
    }

    [Fact]
    public void Prompts_cost_what_they_cost_on_the_real_model_not_the_byte_level_count()
    {
        var real = models.Get(DemoArchitecture.Qwen35, qwenTokenizer: true);
        var byteLevel = models.Get(DemoArchitecture.Qwen35);
        var code = string.Concat(Enumerable.Repeat("public static int Add(int left, int right) => left + right; // sums two numbers\n", 50));

        var realTokens = real.Tokenize(code).Length;
        var byteTokens = byteLevel.Tokenize(code).Length;

        // Real BPE merges whole words: about 4 bytes per token on English code, against ~1.2 for the byte-level toy.
        Assert.InRange((double)code.Length / realTokens, 3.0, 6.0);
        Assert.True(byteTokens > 2.5 * realTokens, $"byte-level {byteTokens} vs real {realTokens}");
    }
}
