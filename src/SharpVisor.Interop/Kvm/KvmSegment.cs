using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_segment: a segment register with its hidden descriptor cache.</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct KvmSegment
{
    [FieldOffset(0)] public ulong Base;
    [FieldOffset(8)] public uint Limit;
    [FieldOffset(12)] public ushort Selector;
    [FieldOffset(14)] public byte Type;
    [FieldOffset(15)] public byte Present;
    [FieldOffset(16)] public byte Dpl;
    [FieldOffset(17)] public byte Db;
    [FieldOffset(18)] public byte S;
    [FieldOffset(19)] public byte L;
    [FieldOffset(20)] public byte G;
    [FieldOffset(21)] public byte Avl;
    [FieldOffset(22)] public byte Unusable;
    [FieldOffset(23)] public byte Padding;
}
