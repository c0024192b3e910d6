using System.Net.Sockets;

namespace SharpVisor.Host.Console;

/// <summary>
/// The daemon's end of a VMM console socket: everything the VMM sends is published on a
/// broadcaster (the domain's console, with its ring), and the broadcaster's input is sent back.
/// </summary>
public sealed class ConsoleSocketClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly ConsoleBroadcaster _console;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _sendLock = new();

    private ConsoleSocketClient(Socket socket, ConsoleBroadcaster console)
    {
        _socket = socket;
        _console = console;
        Completion = PumpOutputAsync();
    }

    /// <summary>Completes when the VMM closes its end (it exited) or this client is disposed.</summary>
    public Task Completion { get; }

    public static async Task<ConsoleSocketClient> ConnectAsync(string path, ConsoleBroadcaster console, CancellationToken cancel)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancel);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new ConsoleSocketClient(socket, console);
        console.Input = client.Send;
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }

        _socket.Dispose();
        await Completion;
    }

    private void Send(ReadOnlySpan<byte> data)
    {
        lock (_sendLock)
        {
            try
            {
                _socket.Send(data);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // The VMM is gone; its exit is handled elsewhere.
            }
        }
    }

    private async Task PumpOutputAsync()
    {
        byte[] buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int read = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    return;
                }

                _console.Publish(buffer.AsSpan(0, read));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }
}
