using SharpVisor.Host.Console;

namespace SharpVisor.Host.Daemon;

/// <summary>One incarnation of a domain's VMM: the process, its API client and the console connection.</summary>
public sealed class VmmConnection : IAsyncDisposable
{
    public VmmConnection(VmmHandle handle, VmmClient client, DateTimeOffset startedAt)
    {
        Handle = handle;
        Client = client;
        StartedAt = startedAt;
    }

    public VmmHandle Handle { get; }

    public VmmClient Client { get; }

    public ConsoleSocketClient? Console { get; set; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>Waits for the process to exit; false when it still runs after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        await Task.WhenAny(Handle.Exited, Task.Delay(timeout));
        return Handle.Exited.IsCompleted;
    }

    /// <summary>Kills the process and waits (bounded) until it is gone.</summary>
    public async Task KillAsync()
    {
        Handle.Kill();
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (Console is not null)
        {
            await Console.DisposeAsync();
        }
    }
}
