using System.Text;
using SharpVisor.Devices.Legacy;
using SharpVisor.Devices.Terminal;
using SharpVisor.Interop.Terminal;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Tests.Terminal;

public sealed class SerialConsoleTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private readonly RecordingInterruptController _interrupts = new();
    private readonly Serial16550 _uart;

    public SerialConsoleTests()
    {
        _uart = new Serial16550(new InterruptLine(_interrupts, Serial16550.Com1Irq));
    }

    /// <summary>Reads what the guest would receive until <paramref name="count"/> bytes came or time ran out.</summary>
    private string ReceiveFromUart(int count)
    {
        var received = new StringBuilder();
        var deadline = DateTime.UtcNow + s_timeout;
        Span<byte> data = stackalloc byte[1];
        while (received.Length < count && DateTime.UtcNow < deadline)
        {
            _uart.Read(Serial16550.LineStatusRegister, data);
            if ((data[0] & Serial16550.LsrDataReady) == 0)
            {
                Thread.Sleep(1);
                continue;
            }

            _uart.Read(Serial16550.DataRegister, data);
            received.Append((char)data[0]);
        }

        return received.ToString();
    }

    [Fact]
    public void KeystrokesOnARawTerminalReachTheGuestWithoutWaitingForEnter()
    {
        using var pty = new PseudoTerminal();
        using var console = new SerialConsole(new MemoryStream(), ownsOutput: true, inputFd: pty.Slave, rawMode: true, onEscape: () => { });
        console.Attach(_uart);
        Assert.True(console.IsInteractive);

        // In cooked mode the line discipline would hold these until a newline.
        pty.Type("ls\x03"u8);

        Assert.Equal("ls\x03", ReceiveFromUart(3));
    }

    [Fact]
    public void CtrlAXCallsTheEscapeCallbackAndDisposeRestoresTheTerminal()
    {
        using var pty = new PseudoTerminal();
        Termios before = pty.GetSettings();
        using var escaped = new ManualResetEventSlim();
        var console = new SerialConsole(new MemoryStream(), ownsOutput: true, inputFd: pty.Slave, rawMode: true, onEscape: escaped.Set);
        console.Attach(_uart);

        pty.Type("a\x01\x01"u8);
        pty.Type("b\x01x"u8);

        Assert.True(escaped.Wait(s_timeout), "Ctrl-A x did not reach the escape callback");
        Assert.Equal("a\x01" + "b", ReceiveFromUart(3));

        console.Dispose();
        Termios after = pty.GetSettings();
        Assert.Equal(before.LocalFlags, after.LocalFlags);
        Assert.Equal(before.InputFlags, after.InputFlags);
    }

    [Fact]
    public void EscapeCallbackMayDisposeTheConsoleFromTheInputThread()
    {
        using var pty = new PseudoTerminal();
        using var done = new ManualResetEventSlim();
        SerialConsole? console = null;
        console = new SerialConsole(new MemoryStream(), ownsOutput: true, inputFd: pty.Slave, rawMode: true, onEscape: () =>
        {
            console!.Dispose();
            done.Set();
        });
        console.Attach(_uart);

        pty.Type("\x01x"u8);

        Assert.True(done.Wait(s_timeout));
        Assert.NotEqual(0u, pty.GetSettings().LocalFlags & Tty.ICANON);
    }

    [Fact]
    public void AFailingEscapeHandlerIsReportedNotFatal()
    {
        using var pty = new PseudoTerminal();
        using var called = new ManualResetEventSlim();
        using var console = new SerialConsole(new MemoryStream(), ownsOutput: true, inputFd: pty.Slave, rawMode: true, onEscape: () =>
        {
            called.Set();
            throw new InvalidOperationException("machine already gone");
        });
        console.Attach(_uart);

        pty.Type("\x01x"u8);

        Assert.True(called.Wait(s_timeout));
        var deadline = DateTime.UtcNow + s_timeout;
        while (console.InputError is null && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(1);
        }

        Assert.Equal("console escape handler failed: machine already gone", console.InputError);
    }

    [Fact]
    public async Task DisposeStopsAnIdleInputThreadPromptly()
    {
        using var pty = new PseudoTerminal();
        var console = new SerialConsole(new MemoryStream(), ownsOutput: true, inputFd: pty.Slave);
        console.Attach(_uart);

        var disposing = Task.Run(console.Dispose);

        Assert.Same(disposing, await Task.WhenAny(disposing, Task.Delay(s_timeout)));
        Assert.Null(console.InputError);
    }

    [Fact]
    public void GuestOutputGoesToTheConsoleStreamAndIsDetachedOnDispose()
    {
        var output = new MemoryStream();
        var console = new SerialConsole(output, ownsOutput: false);
        console.Attach(_uart);
        foreach (byte b in "ok\n"u8)
        {
            _uart.Write(Serial16550.DataRegister, [b]);
        }


        Assert.Equal("ok\n"u8.ToArray(), output.ToArray());
        console.Dispose();
        Assert.Null(_uart.Output);
        Assert.False(console.IsInteractive);
    }

    [Fact]
    public void FileConsoleTruncatesAndReceivesEveryByteAtOnce()
    {
        string path = Path.Combine(Path.GetTempPath(), $"sharpvisor-serial-{Guid.NewGuid():N}.log");
        File.WriteAllText(path, "stale contents from an earlier run");
        try
        {
            using (var console = SerialConsole.Open("file:" + path, onEscape: null))
            {
                console.Attach(_uart);
                foreach (byte b in "boot\r\n"u8)
                {
                    _uart.Write(Serial16550.DataRegister, [b]);
                }


                // Written promptly: readable before the console is closed.
                string contents = "";
                var deadline = DateTime.UtcNow + s_timeout;
                while (contents != "boot\r\n" && DateTime.UtcNow < deadline)
                {
                    Thread.Sleep(1);
                    using var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                    using var text = new StreamReader(reader);
                    contents = text.ReadToEnd();
                }

                Assert.Equal("boot\r\n", contents);
                Assert.Null(console.OutputError);
            }

            Assert.Equal("boot\r\n", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BadSpecsFailWithOneClearMessage()
    {
        var unknown = Assert.Throws<ArgumentException>(() => SerialConsole.Open("tcp:1234", null));
        Assert.Contains("tcp:1234", unknown.Message);

        var missing = Assert.Throws<IOException>(() => SerialConsole.Open("file:/nonexistent-dir/serial.log", null));
        Assert.Contains("/nonexistent-dir/serial.log", missing.Message);

        Assert.Throws<ArgumentException>(() => SerialConsole.Open("file:", null));
    }

    [Fact]
    public void AConsoleAttachesToOneUartOnly()
    {
        using var console = new SerialConsole(Stream.Null, ownsOutput: false);
        console.Attach(_uart);
        Assert.Throws<InvalidOperationException>(() => console.Attach(_uart));
    }
}
