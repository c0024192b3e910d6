using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_dtable: GDTR or IDTR.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct KvmDtable
{
    [FieldOffset(0)] public ulong Base;
    [FieldOffset(8)] public ushort Limit;
}
