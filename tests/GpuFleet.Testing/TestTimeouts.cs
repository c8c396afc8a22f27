namespace GpuFleet.Testing;

/// <summary>One generous default timeout for anything a test awaits, so a hang fails instead of stalling CI.</summary>
public static class TestTimeouts
{
    public static TimeSpan Default { get; } = TimeSpan.FromSeconds(60);

    public static CancellationToken Token() => new CancellationTokenSource(Default).Token;

    public static Task<T> WithTimeout<T>(this Task<T> task) => task.WaitAsync(Default);

    public static Task WithTimeout(this Task task) => task.WaitAsync(Default);
}
