namespace SharpVisor.Host.Tests;

/// <summary>Polls a condition that becomes true asynchronously (a process exit, console output).</summary>
internal static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out after {timeout.TotalSeconds:0} s waiting until {what}");
            }

            await Task.Delay(50);
        }
    }

    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        TrueAsync(() => Task.FromResult(condition()), timeout, what);
}
