using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>The header of struct kvm_msrs; <see cref="NMsrs"/> <see cref="KvmMsrEntry"/> entries follow it in memory.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct KvmMsrs
{
    [FieldOffset(0)] public uint NMsrs;
    [FieldOffset(4)] public uint Pad;
}
