using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>struct stat on x86-64 Linux (144 bytes): the fields SharpVisor reads.</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
public struct FileStat
{
    public const uint TypeMask = 0xF000;
    public const uint TypeRegular = 0x8000;
    public const uint TypeDirectory = 0x4000;
    public const uint TypeBlockDevice = 0x6000;

    [FieldOffset(16)] public ulong LinkCount;
    [FieldOffset(24)] public uint Mode;
    [FieldOffset(48)] public long Size;

    public readonly bool IsRegularFile => (Mode & TypeMask) == TypeRegular;
}
