using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Terminal;

/// <summary>
/// Bindings for terminal control (termios) and pseudo-terminals. Flag values are the
/// Linux ones from asm-generic/termbits.h.
/// </summary>
public static unsafe partial class Tty
{
    private const string Library = "libc";

    // tcsetattr actions
    public const int TCSANOW = 0;
    public const int TCSADRAIN = 1;
    public const int TCSAFLUSH = 2;

    // c_iflag
    public const uint IGNBRK = 0x001;
    public const uint BRKINT = 0x002;
    public const uint PARMRK = 0x008;
    public const uint ISTRIP = 0x020;
    public const uint INLCR = 0x040;
    public const uint IGNCR = 0x080;
    public const uint ICRNL = 0x100;
    public const uint IXON = 0x400;

    // c_oflag
    public const uint OPOST = 0x1;
    public const uint ONLCR = 0x4;

    // c_cflag
    public const uint CSIZE = 0x30;
    public const uint CS8 = 0x30;
    public const uint PARENB = 0x100;

    // c_lflag
    public const uint ISIG = 0x1;
    public const uint ICANON = 0x2;
    public const uint ECHO = 0x8;
    public const uint ECHONL = 0x40;
    public const uint IEXTEN = 0x8000;

    // c_cc indices
    public const int VTIME = 5;
    public const int VMIN = 6;

    public const int O_NOCTTY = 0x100;

    [LibraryImport(Library, EntryPoint = "tcgetattr", SetLastError = true)]
    public static partial int TcGetAttr(int fd, Termios* termios);

    [LibraryImport(Library, EntryPoint = "tcsetattr", SetLastError = true)]
    public static partial int TcSetAttr(int fd, int optionalActions, Termios* termios);

    /// <summary>glibc's cfmakeraw: no echo, no line editing, no signals, no input translation, no output processing.</summary>
    [LibraryImport(Library, EntryPoint = "cfmakeraw")]
    public static partial void CfMakeRaw(Termios* termios);

    [LibraryImport(Library, EntryPoint = "posix_openpt", SetLastError = true)]
    public static partial int PosixOpenpt(int flags);

    [LibraryImport(Library, EntryPoint = "grantpt", SetLastError = true)]
    public static partial int Grantpt(int fd);

    [LibraryImport(Library, EntryPoint = "unlockpt", SetLastError = true)]
    public static partial int Unlockpt(int fd);

    [LibraryImport(Library, EntryPoint = "ptsname_r")]
    private static partial int PtsnameR(int fd, byte* buffer, nuint length);

    /// <summary>The path of the pseudo-terminal slave paired with master <paramref name="masterFd"/>.</summary>
    public static string Ptsname(int masterFd)
    {
        byte* buffer = stackalloc byte[128];
        int error = PtsnameR(masterFd, buffer, 128);
        if (error != 0)
        {
            throw new LinuxException("ptsname_r", error);
        }

        return Marshal.PtrToStringUTF8((nint)buffer)!;
    }
}
