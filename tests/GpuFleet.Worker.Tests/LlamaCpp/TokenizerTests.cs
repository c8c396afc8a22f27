using GpuFleet.Testing;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.LlamaCpp;

[Collection(LlamaCollection.Name)]
public sealed class TokenizerTests(TestModels models)
{
    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen35")]
    public void ChatML_text_round_trips_and_specials_are_single_tokens(string architecture)
    {
        var model = models.Get(TestModels.Parse(architecture));
        const string Text = "<|im_start|>user\nHéllo, wörld — 你好 🚀 the end<|im_end|>\n<|im_start|>assistant\n<think>\n</think>\n";

        var tokens = model.Tokenize(Text);

        Assert.Equal(Text, model.Detokenize(tokens));
        Assert.Single(model.Tokenize("<|im_start|>"));
        Assert.Single(model.Tokenize("<think>"));
        Assert.True(tokens.Length < System.Text.Encoding.UTF8.GetByteCount(Text), "merges shorten the text");
    }

    [Fact]
    public void End_of_generation_tokens_are_recognised()
    {
        var model = models.Get(DemoArchitecture.Qwen35);

        Assert.True(model.IsEndOfGeneration(model.Tokenize("<|im_end|>").Single()));
        Assert.True(model.IsEndOfGeneration(model.Tokenize("<|endoftext|>").Single()));
        Assert.False(model.IsEndOfGeneration(model.Tokenize("<|im_start|>").Single()));
        Assert.False(model.IsEndOfGeneration(model.Tokenize("a").Single()));
    }

    [Fact]
    public void Control_tokens_are_not_rendered_into_output_text_but_user_defined_ones_are()
    {
        var model = models.Get(DemoArchitecture.Qwen3);
        Span<byte> buffer = stackalloc byte[64];

        Assert.Equal(0, model.TokenToPiece(model.Tokenize("<|im_start|>").Single(), buffer, renderSpecial: false));
        var n = model.TokenToPiece(model.Tokenize("<tool_call>").Single(), buffer, renderSpecial: false);
        Assert.Equal("<tool_call>", System.Text.Encoding.UTF8.GetString(buffer[..n]));
    }
}
