using GpuFleet.Worker.Engine;

namespace GpuFleet.Worker.Tests.Engine;

public sealed class EngineOptionsTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        Assert.Empty(new EngineOptions().Validate());
        Assert.Empty(new SamplingParameters().Validate());
    }

    [Fact]
    public void Every_invalid_setting_is_reported_with_its_key_and_value()
    {
        var errors = new EngineOptions { Slots = 0, ContextSize = 10, BatchSize = -1, QueueCapacity = -2, HostCacheBytes = -1, SnapshotInterval = -5, Threads = -1 }.Validate();

        Assert.Equal(7, errors.Count);
        Assert.Contains(errors, e => e.Contains("Engine:Slots", StringComparison.Ordinal) && e.Contains('0', StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Engine:ContextSize", StringComparison.Ordinal) && e.Contains("10", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Engine:QueueCapacity", StringComparison.Ordinal));
    }

    [Fact]
    public void Batch_smaller_than_the_slot_count_is_refused()
    {
        var errors = new EngineOptions { Slots = 8, BatchSize = 4 }.Validate();

        Assert.Single(errors);
        Assert.Contains("Engine:BatchSize", errors[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Out_of_range_sampling_values_are_all_reported()
    {
        var errors = new SamplingParameters { Temperature = float.NaN, TopP = 0, TopK = -1, MinP = 2, RepetitionPenalty = 0, PresencePenalty = 3, FrequencyPenalty = -3, PenaltyLastN = -1 }.Validate();

        Assert.Equal(8, errors.Count);
    }
}
