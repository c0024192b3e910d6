using SharpVisor.Host.Console;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// PUT /serial's serial_out_path: the guest's serial output copied into a file or FIFO from the
/// console broadcaster (so the console socket keeps working). A reader that goes away ends the
/// copy, not the VMM.
/// </summary>
public sealed class SerialOutputFile : IAsyncDisposable
{
    private readonly Stream _output;
    private readonly ConsoleSubscription _subscription;
    private readonly Task _pump;

    public SerialOutputFile(string path, ConsoleBroadcaster console)
    {
        _output = VmmLog.OpenExisting(path, "serial_out_path");
        _subscription = console.Subscribe();
        _pump = PumpAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _subscription.Dispose();
        await _pump.ConfigureAwait(false);
        await _output.DisposeAsync().ConfigureAwait(false);
    }

    private async Task PumpAsync()
    {
        try
        {
            await _output.WriteAsync(_subscription.History).ConfigureAwait(false);
            await foreach (byte[] chunk in _subscription.Live.ReadAllAsync().ConfigureAwait(false))
            {
                await _output.WriteAsync(chunk).ConfigureAwait(false);
                await _output.FlushAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The reader went away or the VMM is stopping: the console socket still serves the console.
        }
    }
}
