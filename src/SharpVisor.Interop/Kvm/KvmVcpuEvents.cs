using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_vcpu_events: pending and injected exception, interrupt, NMI, SIPI, SMM state (64 bytes, kept as bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public unsafe struct KvmVcpuEvents
{
    [FieldOffset(0)] public fixed byte Bytes[64];
}
