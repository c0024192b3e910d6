using System.CommandLine;
using System.Net.WebSockets;
using System.Runtime.InteropServices;
using SharpVisor.Devices.Terminal;
using SharpVisor.Interop;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor console DOMAIN</c>: attach to a domain's serial console through the daemon;
/// recent output (the boot log) comes first. Ctrl-] detaches, as with xl console.
/// </summary>
public static class ConsoleCommand
{
    public const byte DetachKey = 0x1D;
    private const int EINTR = 4;

    public static Command Create()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "Domain name or id" };
        var history = new Option<bool>("--history") { Description = "Print the recent output and exit, without attaching" };
        var command = new Command("console", "Attach to a domain's serial console (Ctrl-] detaches).") { domain, history };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string name = result.GetValue(domain)!;
            using Stream stdout = Console.OpenStandardOutput();
            if (result.GetValue(history))
            {
                await stdout.WriteAsync(await client.ConsoleHistoryAsync(name, cancel), cancel);
                return ExitCodes.Success;
            }

            using WebSocket socket = await client.AttachConsoleAsync(name, cancel);
            bool interactive = !Console.IsInputRedirected;
            Console.Error.WriteLine($"[sharpvisor] attached to the console of {name}{(interactive ? "; Ctrl-] detaches" : "")}");
            using RawTerminalMode? raw = interactive ? RawTerminalMode.Enter(0) : null;
            string? end = await PumpAsync(socket, stdout, cancel);
            raw?.Restore();
            Console.Error.WriteLine(end is null ? "\n[sharpvisor] detached" : $"\n[sharpvisor] console closed: {end}");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    /// <summary>Copies console output to stdout and stdin to the console until detach or close; returns the close reason.</summary>
    private static async Task<string?> PumpAsync(WebSocket socket, Stream stdout, CancellationToken cancel)
    {
        using var detached = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var input = new Thread(() => ForwardInput(socket, detached)) { IsBackground = true, Name = "console-input" };
        input.Start();
        byte[] buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                WebSocketReceiveResult received = await socket.ReceiveAsync(buffer, detached.Token);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    return received.CloseStatusDescription ?? "the domain stopped";
                }

                await stdout.WriteAsync(buffer.AsMemory(0, received.Count), detached.Token);
                await stdout.FlushAsync(detached.Token);
            }
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return null;
        }
        catch (WebSocketException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// Reads fd 0 directly: .NET's stdin stream on a terminal is line-buffered through its own
    /// line editor, which would hold keystrokes (and Ctrl-]) until Enter.
    /// </summary>
    private static unsafe void ForwardInput(WebSocket socket, CancellationTokenSource detached)
    {
        byte[] buffer = new byte[1024];
        try
        {
            while (!detached.IsCancellationRequested)
            {
                nint read;
                fixed (byte* p = buffer)
                {
                    read = LibC.Read(0, p, (nuint)buffer.Length);
                }

                if (read < 0 && Marshal.GetLastPInvokeError() == EINTR)
                {
                    continue;
                }

                if (read <= 0)
                {
                    return; // stdin ended: keep showing output until the console closes.
                }

                int detach = Array.IndexOf(buffer, DetachKey, 0, (int)read);
                int length = detach < 0 ? (int)read : detach;
                if (length > 0)
                {
                    socket.SendAsync(buffer.AsMemory(0, length), WebSocketMessageType.Binary, true, detached.Token).AsTask().GetAwaiter().GetResult();
                }

                if (detach >= 0)
                {
                    detached.Cancel();
                    return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
