using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Terminal;

/// <summary>glibc's <c>struct termios</c> on x86-64 (60 bytes): the terminal line discipline settings.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct Termios
{
    public const int NccsCount = 32;

    public uint InputFlags;
    public uint OutputFlags;
    public uint ControlFlags;
    public uint LocalFlags;
    public byte LineDiscipline;
    public fixed byte ControlCharacters[NccsCount];
    public uint InputSpeed;
    public uint OutputSpeed;
}
