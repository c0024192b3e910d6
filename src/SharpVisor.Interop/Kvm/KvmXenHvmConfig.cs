using System.Runtime.InteropServices;

namespace SharpVisor.Interop.Kvm;

/// <summary>
/// struct kvm_xen_hvm_config (KVM_XEN_HVM_CONFIG): the MSR that writes the hypercall page and what
/// KVM does with Xen hypercalls. With <see cref="FlagInterceptHcall"/> (and no blobs) KVM writes the
/// hypercall page itself and hands every VMCALL/VMMCALL to user space as KVM_EXIT_XEN.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 56)]
public struct KvmXenHvmConfig
{
    /// <summary>KVM_XEN_HVM_CONFIG_HYPERCALL_MSR: the MSR part of this struct is honoured.</summary>
    public const uint FlagHypercallMsr = 1u << 0;

    /// <summary>KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL: Xen hypercalls exit as KVM_EXIT_XEN.</summary>
    public const uint FlagInterceptHcall = 1u << 1;

    /// <summary>KVM_XEN_HVM_CONFIG_SHARED_INFO: the shared_info/vcpu_info attributes and the upcall vector.</summary>
    public const uint FlagSharedInfo = 1u << 2;

    /// <summary>KVM_XEN_HVM_CONFIG_RUNSTATE: KVM keeps the vCPUs' runstate areas.</summary>
    public const uint FlagRunstate = 1u << 3;

    /// <summary>KVM_XEN_HVM_CONFIG_EVTCHN_2LEVEL: KVM can raise 2-level events itself (irq routing).</summary>
    public const uint FlagEvtchn2Level = 1u << 4;

    /// <summary>KVM_XEN_HVM_CONFIG_EVTCHN_SEND: in-kernel event channels, timers, vCPU ids, per-vCPU vectors.</summary>
    public const uint FlagEvtchnSend = 1u << 5;

    [FieldOffset(0)] public uint Flags;
    [FieldOffset(4)] public uint Msr;
    [FieldOffset(8)] public ulong BlobAddr32;
    [FieldOffset(16)] public ulong BlobAddr64;
    [FieldOffset(24)] public byte BlobSize32;
    [FieldOffset(25)] public byte BlobSize64;
}
