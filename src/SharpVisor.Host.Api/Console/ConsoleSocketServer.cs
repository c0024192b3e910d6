using System.Net.Sockets;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Console;

/// <summary>
/// Serves a console on a Unix stream socket (mode 0600): each client gets the ring's history,
/// then live output; whatever it sends is console input. The daemon is the usual client.
/// </summary>
public sealed class ConsoleSocketServer : IAsyncDisposable
{
    private readonly ConsoleBroadcaster _console;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly List<Task> _clients = new();

    public ConsoleSocketServer(string path, ConsoleBroadcaster console)
    {
        _console = console;
        Path = path;
        File.Delete(path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        UnixSocketFiles.RestrictToOwner(path);
        _listener.Listen(8);
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Serves on a socket bound at <paramref name="path"/> that already listens (inherited across exec: the Firecracker front end's handover).</summary>
    public ConsoleSocketServer(Socket listener, string path, ConsoleBroadcaster console)
    {
        _console = console;
        Path = path;
        _listener = listener;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The listening socket (the handover passes its descriptor across exec).</summary>
    public Socket Listener => _listener;

    public string Path { get; }

    /// <summary>Waits until every client has been sent all output (after the console completed).</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        Task[] clients;
        lock (_clients)
        {
            clients = _clients.ToArray();
        }

        await Task.WhenAny(Task.WhenAll(clients), Task.Delay(timeout));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        try
        {
            await _acceptLoop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        File.Delete(Path);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client = await _listener.AcceptAsync(_stop.Token);
            lock (_clients)
            {
                _clients.RemoveAll(t => t.IsCompleted);
                _clients.Add(ServeAsync(client));
            }
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using Socket socket = client;
        using ConsoleSubscription subscription = _console.Subscribe();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        Task input = PumpInputAsync(socket, done.Token);
        try
        {
            await socket.SendAsync(subscription.History, SocketFlags.None, done.Token);
            await foreach (byte[] chunk in subscription.Live.ReadAllAsync(done.Token))
            {
                await socket.SendAsync(chunk, SocketFlags.None, done.Token);
            }

            // The console ended (the machine stopped): tell the client with an orderly close.
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            done.Cancel();
            try
            {
                await input;
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }

    private async Task PumpInputAsync(Socket socket, CancellationToken cancel)
    {
        byte[] buffer = new byte[1024];
        while (true)
        {
            int read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel);
            if (read == 0)
            {
                return;
            }

            _console.WriteInput(buffer.AsSpan(0, read));
        }
    }
}
