namespace GpuFleet.Gateway.Load;

/// <summary>Passive health (ejection of a failing worker and its gradual return), bound from <c>Gateway:PassiveHealth</c>.</summary>
internal sealed class PassiveHealthOptions
{
    public const string SectionName = "Gateway:PassiveHealth";

    /// <summary>
    /// Failures in a row (a connection that failed, or a response the worker broke) that take a worker out. One is a blip
    /// a retry hides; a dead worker's queued requests fail together and reach this at once.
    /// </summary>
    public int EjectAfterFailures { get; set; } = 3;

    /// <summary>The first time out; it doubles for each ejection that follows a return within the slow start.</summary>
    public TimeSpan FirstCoolDown { get; set; } = TimeSpan.FromSeconds(2);

    public TimeSpan MaxCoolDown { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// After its time out, a worker is given a share of its slots that rises linearly from a tenth to all of them over
    /// this time, so that a worker that is still sick fails a few requests, not a full batch; one failure in this time
    /// takes it out again at once, with a doubled time out.
    /// </summary>
    public TimeSpan SlowStart { get; set; } = TimeSpan.FromSeconds(30);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (EjectAfterFailures is < 1 or > 100)
        {
            errors.Add($"{SectionName}:EjectAfterFailures must be between 1 and 100, not {EjectAfterFailures}.");
        }

        if (FirstCoolDown <= TimeSpan.Zero || MaxCoolDown < FirstCoolDown)
        {
            errors.Add($"{SectionName}: FirstCoolDown must be positive and MaxCoolDown not below it (now {FirstCoolDown} and {MaxCoolDown}).");
        }

        if (SlowStart < TimeSpan.Zero)
        {
            errors.Add($"{SectionName}:SlowStart must not be negative, not {SlowStart}.");
        }

        return errors;
    }
}
