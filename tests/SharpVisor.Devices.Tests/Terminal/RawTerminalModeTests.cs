using SharpVisor.Devices.Terminal;
using SharpVisor.Interop;
using SharpVisor.Interop.Terminal;

namespace SharpVisor.Devices.Tests.Terminal;

public sealed unsafe class RawTerminalModeTests
{
    [Fact]
    public void RawSettingsDropLineEditingEchoAndSignalsButKeepOutputProcessing()
    {
        Termios cooked = default;
        cooked.InputFlags = Tty.ICRNL | Tty.IXON | Tty.BRKINT | Tty.ISTRIP;
        cooked.OutputFlags = Tty.OPOST | Tty.ONLCR;
        cooked.ControlFlags = Tty.PARENB | 0x20; // CS7 with parity
        cooked.LocalFlags = Tty.ICANON | Tty.ECHO | Tty.ISIG | Tty.IEXTEN | Tty.ECHONL;
        cooked.ControlCharacters[Tty.VMIN] = 0;
        cooked.ControlCharacters[Tty.VTIME] = 5;

        Termios raw = RawTerminalMode.MakeRaw(cooked);

        Assert.Equal(0u, raw.InputFlags & (Tty.ICRNL | Tty.IXON | Tty.BRKINT | Tty.ISTRIP));
        Assert.Equal(0u, raw.LocalFlags & (Tty.ICANON | Tty.ECHO | Tty.ISIG | Tty.IEXTEN | Tty.ECHONL));
        Assert.Equal(Tty.CS8, raw.ControlFlags & Tty.CSIZE);
        Assert.Equal(0u, raw.ControlFlags & Tty.PARENB);
        Assert.Equal(Tty.OPOST | Tty.ONLCR, raw.OutputFlags);
        Assert.Equal(1, raw.ControlCharacters[Tty.VMIN]);
        Assert.Equal(0, raw.ControlCharacters[Tty.VTIME]);
    }

    [Fact]
    public void EnterSetsRawModeOnATerminalAndDisposeRestoresIt()
    {
        using var pty = new PseudoTerminal();
        Termios before = pty.GetSettings();
        Assert.NotEqual(0u, before.LocalFlags & Tty.ICANON); // a fresh pty starts cooked

        using (var mode = RawTerminalMode.Enter(pty.Slave))
        {
            Termios during = pty.GetSettings();
            Assert.Equal(0u, during.LocalFlags & (Tty.ICANON | Tty.ECHO | Tty.ISIG));
            Assert.Equal(0u, during.InputFlags & (Tty.ICRNL | Tty.IXON));
            Assert.Equal(1, during.ControlCharacters[Tty.VMIN]);
            Assert.False(mode.IsRestored);
        }

        AssertSameSettings(before, pty.GetSettings());
    }

    [Fact]
    public void RestoreIsIdempotentAndLeavesLaterChangesAlone()
    {
        using var pty = new PseudoTerminal();
        Termios before = pty.GetSettings();
        var mode = RawTerminalMode.Enter(pty.Slave);
        mode.Restore();
        AssertSameSettings(before, pty.GetSettings());

        // Someone else changes the terminal afterwards: a second restore must not undo it.
        Termios changed = before;
        changed.LocalFlags &= ~Tty.ECHO;
        LinuxException.ThrowIfFailed(Tty.TcSetAttr(pty.Slave, Tty.TCSANOW, &changed), "tcsetattr");
        mode.Restore();
        mode.Dispose();
        Assert.Equal(0u, pty.GetSettings().LocalFlags & Tty.ECHO);
    }

    [Fact]
    public void EnteringRawModeOnANonTerminalFailsClearly()
    {
        using var file = File.OpenHandle(Path.GetTempFileName(), FileMode.Open, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        var error = Assert.Throws<LinuxException>(() => RawTerminalMode.Enter((int)file.DangerousGetHandle()));
        Assert.Equal("tcgetattr", error.Operation);
    }

    private static void AssertSameSettings(Termios expected, Termios actual)
    {
        Assert.Equal(expected.InputFlags, actual.InputFlags);
        Assert.Equal(expected.OutputFlags, actual.OutputFlags);
        Assert.Equal(expected.ControlFlags, actual.ControlFlags);
        Assert.Equal(expected.LocalFlags, actual.LocalFlags);
        for (int i = 0; i < Termios.NccsCount; i++)
        {
            Assert.Equal(expected.ControlCharacters[i], actual.ControlCharacters[i]);
        }
    }
}
