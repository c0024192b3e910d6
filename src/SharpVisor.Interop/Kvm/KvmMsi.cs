using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_msi (KVM_SIGNAL_MSI): deliver one message-signalled interrupt.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
public struct KvmMsi
{
    [FieldOffset(0)] public uint AddressLo;
    [FieldOffset(4)] public uint AddressHi;
    [FieldOffset(8)] public uint Data;
    [FieldOffset(12)] public uint Flags;
    [FieldOffset(16)] public uint DevId;
}
