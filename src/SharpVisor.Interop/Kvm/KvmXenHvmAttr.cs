using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// struct kvm_xen_hvm_attr (KVM_XEN_HVM_SET_ATTR/GET_ATTR): one per-VM Xen attribute. The union at
/// offset 8 holds a byte (long_mode, vector), the shared_info frame, or the Xen version.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
public struct KvmXenHvmAttr
{
    /// <summary>KVM_XEN_ATTR_TYPE_LONG_MODE: shared_info and vcpu_info have the 64-bit layout.</summary>
    public const ushort TypeLongMode = 0x0;

    /// <summary>KVM_XEN_ATTR_TYPE_SHARED_INFO: the guest frame of shared_info (~0: none).</summary>
    public const ushort TypeSharedInfo = 0x1;

    /// <summary>KVM_XEN_ATTR_TYPE_UPCALL_VECTOR: the domain-wide callback vector KVM injects while evtchn_upcall_pending.</summary>
    public const ushort TypeUpcallVector = 0x2;

    /// <summary>KVM_XEN_ATTR_TYPE_EVTCHN: an in-kernel event-channel port (EVTCHN_SEND).</summary>
    public const ushort TypeEvtchn = 0x3;

    /// <summary>KVM_XEN_ATTR_TYPE_XEN_VERSION: the XENVER_version answer KVM gives itself (EVTCHN_SEND).</summary>
    public const ushort TypeXenVersion = 0x4;

    /// <summary>The shared_info frame that means "no shared_info" (KVM_XEN_INVALID_GFN).</summary>
    public const ulong InvalidGfn = ulong.MaxValue;

    [FieldOffset(0)] public ushort Type;

    [FieldOffset(8)] public byte LongMode;
    [FieldOffset(8)] public byte Vector;
    [FieldOffset(8)] public ulong SharedInfoGfn;
    [FieldOffset(8)] public uint XenVersion;
}
