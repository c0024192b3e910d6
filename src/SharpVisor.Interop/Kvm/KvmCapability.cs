namespace SharpVisor.Interop.Kvm;

/// <summary>Arguments of KVM_CHECK_EXTENSION (KVM_CAP_* in &lt;linux/kvm.h&gt;) that SharpVisor asks about.</summary>
public enum KvmCapability
{
    Irqchip = 0,
    Hlt = 1,
    UserMemory = 3,
    SetTssAddr = 4,
    ExtCpuid = 7,
    NrVcpus = 9,
    NrMemslots = 10,
    MpState = 14,
    IrqRouting = 25,
    Irqfd = 32,
    Pit2 = 33,
    Ioeventfd = 36,
    SetIdentityMapAddr = 37,
    /// <summary>KVM_CAP_XEN_HVM: not a yes/no but the KVM_XEN_HVM_CONFIG_* flags this KVM supports (<see cref="KvmXenHvmConfig"/>).</summary>
    XenHvm = 38,
    AdjustClock = 39,
    Xsave = 55,
    MaxVcpus = 66,
    TscDeadlineTimer = 72,
    SyncRegs = 74,
    KvmclockCtrl = 76,
    SignalMsi = 77,
    ReadonlyMem = 81,
    ImmediateExit = 136,
    X86UserSpaceMsr = 188,
    X86MsrFilter = 189,
}
