using System.Net.WebSockets;

namespace SharpVisor.Host.Console;

/// <summary>
/// A console over a WebSocket (the daemon's `console` endpoint): binary messages each way,
/// history first, and a normal close with the reason when the domain's console ends.
/// </summary>
public static class ConsoleWebSocket
{
    public static async Task ServeAsync(WebSocket socket, ConsoleBroadcaster console, Func<string> describeEnd, CancellationToken cancel)
    {
        using ConsoleSubscription subscription = console.Subscribe();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        Task input = PumpInputAsync(socket, console, done.Token);
        try
        {
            if (subscription.History.Length > 0)
            {
                await socket.SendAsync(subscription.History, WebSocketMessageType.Binary, endOfMessage: true, done.Token);
            }

            Task<bool> more = subscription.Live.WaitToReadAsync(done.Token).AsTask();
            while (true)
            {
                // The client closing (input ends) also ends the session.
                if (await Task.WhenAny(more, input) == input)
                {
                    return;
                }

                if (!await more)
                {
                    break;
                }

                while (subscription.Live.TryRead(out byte[]? chunk))
                {
                    await socket.SendAsync(chunk, WebSocketMessageType.Binary, endOfMessage: true, done.Token);
                }

                more = subscription.Live.WaitToReadAsync(done.Token).AsTask();
            }

            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, Truncate(describeEnd()), done.Token);

            // Give the client time to read the close frame before the connection is torn down.
            await Task.WhenAny(input, Task.Delay(TimeSpan.FromSeconds(2), done.Token));
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
        }
        finally
        {
            done.Cancel();
            try
            {
                await input;
            }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException)
            {
            }
        }
    }

    private static async Task PumpInputAsync(WebSocket socket, ConsoleBroadcaster console, CancellationToken cancel)
    {
        byte[] buffer = new byte[1024];
        while (true)
        {
            WebSocketReceiveResult result = await socket.ReceiveAsync(buffer, cancel);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }

            console.WriteInput(buffer.AsSpan(0, result.Count));
        }
    }

    /// <summary>A close description is at most 123 bytes.</summary>
    private static string Truncate(string text) => text.Length > 120 ? text[..120] : text;
}
