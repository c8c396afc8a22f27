using GpuFleet.Testing;
using GpuFleet.Worker.LlamaCpp;
using GpuFleet.Worker.Models;

namespace GpuFleet.Worker.Tests.Models;

[Collection(LlamaCollection.Name)]
public sealed class DemoModelBuilderTests(TestModels models)
{
    [Theory]
    [InlineData("qwen3", false)]
    [InlineData("qwen35", true)]
    public void Tiny_model_is_a_small_gguf_of_the_requested_architecture(string architecture, bool hybrid)
    {
        var path = models.PathOf(TestModels.Parse(architecture));
        Assert.InRange(new FileInfo(path).Length, 10_000, 1_000_000);

        var model = models.Get(TestModels.Parse(architecture));
        Assert.Equal(architecture, model.Architecture);
        Assert.Equal(hybrid, model.IsHybrid);
        Assert.True(model.ParameterCount > 50_000, $"{model.ParameterCount} parameters");
        Assert.Contains("<|im_start|>", model.ChatTemplate, StringComparison.Ordinal);
    }

    [Fact]
    public void Same_seed_gives_the_same_file_and_another_seed_other_weights()
    {
        var directory = models.Directory;
        var a = DemoModelBuilder.Build(new DemoModelOptions(Path.Combine(directory, "seed-a.gguf"), DemoArchitecture.Qwen3, DemoModelSize.Tiny) { Seed = 7 });
        var b = DemoModelBuilder.Build(new DemoModelOptions(Path.Combine(directory, "seed-b.gguf"), DemoArchitecture.Qwen3, DemoModelSize.Tiny) { Seed = 7 });
        var c = DemoModelBuilder.Build(new DemoModelOptions(Path.Combine(directory, "seed-c.gguf"), DemoArchitecture.Qwen3, DemoModelSize.Tiny) { Seed = 8 });

        Assert.Equal(File.ReadAllBytes(a.Path), File.ReadAllBytes(b.Path));
        Assert.NotEqual(File.ReadAllBytes(a.Path), File.ReadAllBytes(c.Path));
    }

    [Fact]
    public void Quantized_tiny_model_loads_and_reports_q8_0()
    {
        var path = Path.Combine(models.Directory, "q8.gguf");
        var info = DemoModelBuilder.Build(new DemoModelOptions(path, DemoArchitecture.Qwen35, DemoModelSize.Tiny) { Quantization = DemoQuantization.Q8_0 });

        using var model = LlamaModel.Load(info.Path);
        Assert.Contains("Q8_0", model.Description, StringComparison.Ordinal);
        Assert.Contains("<|im_start|>", model.ChatTemplate, StringComparison.Ordinal);
    }

    [Fact]
    public void Loading_a_file_that_is_not_gguf_fails_with_a_clear_error()
    {
        var path = Path.Combine(models.Directory, "not-a-model.gguf");
        File.WriteAllText(path, "definitely not a GGUF file");

        var error = Assert.Throws<LlamaNativeException>(() => LlamaModel.Load(path));
        Assert.Contains("could not load", error.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => LlamaModel.Load(Path.Combine(models.Directory, "missing.gguf")));
    }
}
