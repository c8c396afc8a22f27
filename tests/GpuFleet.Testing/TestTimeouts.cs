namespace GpuFleet.Testing;

/// <summary>One generous default timeout for anything a test awaits, so a hang fails instead of stalling CI.</summary>
public static class TestTimeouts
{
    public static TimeSpan Default { get; } = TimeSpan.FromSeconds(60);

    public static CancellationToken Token() => new CancellationTokenSource(Default).Token;

    public static Task<T> WithTimeout<T>(this Task<T> task) => task.WaitAsync(Default);

    public static Task WithTimeout(this Task task) => task.WaitAsync(Default);

    /// <summary>Polls <paramref name="condition"/> until it holds; throws <see cref="TimeoutException"/> (with <paramref name="describe"/>'s text) after the default timeout.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, Func<string>? describe = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + Default;
        while (!await condition())
        {
            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException(describe?.Invoke() ?? "The condition was not reached in time.");
            }

            await Task.Delay(20);
        }
    }
}
