namespace GpuFleet.Contracts.Tests;

/// <summary>One bound for everything a test awaits (servers starting, Node processes, observations), so a hang fails instead of stalling.</summary>
internal static class TestTimeouts
{
    public static TimeSpan Default { get; } = TimeSpan.FromSeconds(60);

    public static CancellationToken Token() => new CancellationTokenSource(Default).Token;

    public static Task<T> WithTimeout<T>(this Task<T> task) => task.WaitAsync(Default);

    public static Task WithTimeout(this Task task) => task.WaitAsync(Default);
}
