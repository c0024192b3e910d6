using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>The header of struct kvm_irq_routing (KVM_SET_GSI_ROUTING); <see cref="Nr"/> <see cref="KvmIrqRoutingEntry"/> entries follow it.</summary>
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct KvmIrqRouting
{
    [FieldOffset(0)] public uint Nr;
    [FieldOffset(4)] public uint Flags;
}
