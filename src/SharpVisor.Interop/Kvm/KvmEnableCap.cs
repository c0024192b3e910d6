using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_enable_cap (KVM_ENABLE_CAP): a capability and its arguments.</summary>
[StructLayout(LayoutKind.Explicit, Size = 104)]
public struct KvmEnableCap
{
    [FieldOffset(0)] public uint Cap;
    [FieldOffset(4)] public uint Flags;
    [FieldOffset(8)] public ulong Arg0;
    [FieldOffset(16)] public ulong Arg1;
    [FieldOffset(24)] public ulong Arg2;
    [FieldOffset(32)] public ulong Arg3;
}
