using GpuFleet.Testing;

namespace GpuFleet.Worker.Tests;

/// <summary>
/// Tests that drive llama.cpp share one set of tiny models and run one after another: the machine has
/// two cores and every context already uses both.
/// </summary>
[CollectionDefinition(Name)]
public sealed class LlamaCollection : ICollectionFixture<TestModels>
{
    public const string Name = "llama.cpp";
}
