using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// struct kvm_xen_vcpu_attr (KVM_XEN_VCPU_SET_ATTR/GET_ATTR): one per-vCPU Xen attribute. The union
/// at offset 8 holds a guest-physical address, the Xen vCPU id, a vector or a timer.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
public struct KvmXenVcpuAttr
{
    /// <summary>KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO: where the vCPU's vcpu_info is (KVM reads evtchn_upcall_pending and keeps its time info there).</summary>
    public const ushort TypeVcpuInfo = 0x0;

    /// <summary>KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO: an extra vcpu_time_info KVM keeps current.</summary>
    public const ushort TypeVcpuTimeInfo = 0x1;

    /// <summary>KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR (RUNSTATE).</summary>
    public const ushort TypeRunstateAddr = 0x2;

    /// <summary>KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID: the vCPU's Xen id (EVTCHN_SEND).</summary>
    public const ushort TypeVcpuId = 0x6;

    /// <summary>KVM_XEN_VCPU_ATTR_TYPE_TIMER: an in-kernel single-shot timer raising a port (EVTCHN_SEND).</summary>
    public const ushort TypeTimer = 0x7;

    /// <summary>KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR: the per-vCPU vector for events KVM raises itself (EVTCHN_SEND).</summary>
    public const ushort TypeUpcallVector = 0x8;

    /// <summary>The address that means "none" (KVM_XEN_INVALID_GPA).</summary>
    public const ulong InvalidGpa = ulong.MaxValue;

    [FieldOffset(0)] public ushort Type;

    [FieldOffset(8)] public ulong Gpa;
    [FieldOffset(8)] public uint VcpuId;
    [FieldOffset(8)] public byte Vector;
    [FieldOffset(8)] public uint TimerPort;
    [FieldOffset(12)] public uint TimerPriority;
    [FieldOffset(16)] public ulong TimerExpiresNs;
}
