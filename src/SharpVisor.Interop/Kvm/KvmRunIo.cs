using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>kvm_run.io (KVM_EXIT_IO): <see cref="Count"/> accesses of <see cref="Size"/> bytes, data at <see cref="DataOffset"/> from the start of kvm_run.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmRunIo
{
    public const byte DirectionIn = 0;
    public const byte DirectionOut = 1;

    [FieldOffset(0)]
    public byte Direction;

    [FieldOffset(1)]
    public byte Size;

    [FieldOffset(2)]
    public ushort Port;

    [FieldOffset(4)]
    public uint Count;

    [FieldOffset(8)]
    public ulong DataOffset;
}
