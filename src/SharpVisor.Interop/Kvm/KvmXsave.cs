using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_xsave: the vCPU's XSAVE area (legacy region, header, extended components), 4 KiB.</summary>
[StructLayout(LayoutKind.Explicit, Size = 4096)]
public unsafe struct KvmXsave
{
    [FieldOffset(0)] public fixed uint Region[1024];
}
