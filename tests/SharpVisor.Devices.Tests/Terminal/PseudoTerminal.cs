using SharpVisor.Interop;
using SharpVisor.Interop.Terminal;

namespace SharpVisor.Devices.Tests.Terminal;

/// <summary>A pseudo-terminal pair: the slave plays the user's terminal, the master the keyboard.</summary>
internal sealed unsafe class PseudoTerminal : IDisposable
{
    public PseudoTerminal()
    {
        Master = Tty.PosixOpenpt(LibC.O_RDWR | Tty.O_NOCTTY | LibC.O_CLOEXEC);
        LinuxException.ThrowIfFailed(Master, "posix_openpt");
        LinuxException.ThrowIfFailed(Tty.Grantpt(Master), "grantpt");
        LinuxException.ThrowIfFailed(Tty.Unlockpt(Master), "unlockpt");
        Slave = LibC.Open(Tty.Ptsname(Master), LibC.O_RDWR | Tty.O_NOCTTY | LibC.O_CLOEXEC);
        LinuxException.ThrowIfFailed(Slave, "open pty slave");
    }

    public int Master { get; }

    public int Slave { get; }

    /// <summary>Types bytes as if at the keyboard.</summary>
    public void Type(ReadOnlySpan<byte> keys)
    {
        fixed (byte* p = keys)
        {
            Assert.Equal(keys.Length, (int)LibC.Write(Master, p, (nuint)keys.Length));
        }
    }

    public Termios GetSettings()
    {
        Termios settings;
        LinuxException.ThrowIfFailed(Tty.TcGetAttr(Slave, &settings), "tcgetattr");
        return settings;
    }

    public void Dispose()
    {
        LibC.Close(Slave);
        LibC.Close(Master);
    }
}
