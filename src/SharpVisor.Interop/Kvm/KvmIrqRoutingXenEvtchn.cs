using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>struct kvm_irq_routing_xen_evtchn (KVM_XEN_HVM_EVTCHN_SEND): raise a port on a vCPU in the kernel.</summary>
[StructLayout(LayoutKind.Explicit, Size = 12)]
public struct KvmIrqRoutingXenEvtchn
{
    /// <summary>KVM_IRQ_ROUTING_XEN_EVTCHN_PRIO_2LEVEL, the only priority.</summary>
    public const uint Priority2Level = uint.MaxValue;

    [FieldOffset(0)] public uint Port;
    [FieldOffset(4)] public uint Vcpu;
    [FieldOffset(8)] public uint Priority;
}
