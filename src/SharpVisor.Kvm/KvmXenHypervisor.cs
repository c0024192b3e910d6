using System.Runtime.InteropServices;
using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;
using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Kvm;

/// <summary>
/// SharpVisor's Xen layer riding on KVM's Xen support (KVM_CAP_XEN_HVM), the way QEMU's xen-emu does:
/// KVM_XEN_HVM_CONFIG with INTERCEPT_HCALL makes KVM write the hypercall page when the guest writes
/// MSR 0x40000000 and hand every VMCALL/VMMCALL to user space (KVM_EXIT_XEN), where the same
/// <see cref="IHypervisorInterface"/> the emulator uses answers it (<see cref="KvmXenHypercallContext"/>).
/// KVM is told where shared_info and each vcpu_info are (so it injects the domain's callback vector
/// while evtchn_upcall_pending is set, and keeps vcpu_time_info current) and that the guest is 64-bit.
/// Event channels, timers and the per-vCPU upcall vector stay in the Xen layer: a per-vCPU vector is
/// delivered as an MSI to that vCPU's local APIC (the guest acknowledges it with an EOI, as on Xen).
/// </summary>
public sealed unsafe class KvmXenHypervisor : IHypervisorHost, IXenKernelAssist
{
    /// <summary>Xen's hypercall-page MSR (CPUID 0x40000002 EBX names it to the guest).</summary>
    public const uint HypercallPageMsr = 0x4000_0000;

    private const ulong MsiAddressBase = 0xFEE0_0000;
    private const int MsiDestinationShift = 12;

    private readonly KvmVirtualMachine _vm;
    private readonly byte[] _vcpuVectors;
    private readonly Dictionary<int, Queue<KvmXenVcpuAttr>> _pending = [];
    private readonly object _lock = new();
    private ulong _lastClock;
    private long _failedWakeUps;

    private KvmXenHypervisor(KvmVirtualMachine vm, IHypervisorInterface hypervisor, KvmXenSupport support)
    {
        _vm = vm;
        Interface = hypervisor;
        Support = support;
        _vcpuVectors = new byte[vm.VcpuCount];
        Instruction = IsAmdLike(vm.SupportedCpuid) ? HypercallInstruction.Vmmcall : HypercallInstruction.Vmcall;
    }

    /// <summary>The Xen layer (SharpVisor.Xen's XenDomain) this VM's hypercalls go to.</summary>
    public IHypervisorInterface Interface { get; }

    /// <summary>The flags KVM_CAP_XEN_HVM reported.</summary>
    public KvmXenSupport Support { get; }

    public HypercallInstruction Instruction { get; }

    /// <summary>
    /// The domain's Xen system time is KVM's kvmclock: KVM writes vcpu_time_info from it, so the Xen
    /// layer reads the same clock (in nanoseconds: a "TSC" of 1 GHz) for its timers and get_time.
    /// </summary>
    public long TscFrequencyHz => 1_000_000_000;

    public MachineControl Control => _vm.Control;

    /// <summary>Checks the flags, configures KVM's Xen support and connects <paramref name="hypervisor"/>; before any vCPU exists.</summary>
    internal static KvmXenHypervisor Create(KvmVirtualMachine vm, IHypervisorInterface hypervisor)
    {
        var support = new KvmXenSupport((uint)vm.System.CheckExtension(KvmCapability.XenHvm), vm.System.DevicePath);
        if (!support.IsUsable)
        {
            throw new KvmUnavailableException(
                $"{vm.System.DevicePath}: SharpVisor's Xen layer cannot ride on this KVM: {support.Describe()}, it needs {string.Join(", ", support.MissingFlags)}");
        }

        var config = new KvmXenHvmConfig { Flags = KvmXenHvmConfig.FlagInterceptHcall, Msr = HypercallPageMsr };
        VmIoctl(vm, KvmIoctls.XenHvmConfig, &config, "KVM_XEN_HVM_CONFIG");

        // SharpVisor.Xen lays shared_info and vcpu_info out the 64-bit way; KVM must use the same layout.
        var longMode = new KvmXenHvmAttr { Type = KvmXenHvmAttr.TypeLongMode, LongMode = 1 };
        VmIoctl(vm, KvmIoctls.XenHvmSetAttr, &longMode, "KVM_XEN_HVM_SET_ATTR(LONG_MODE)");

        var xen = new KvmXenHypervisor(vm, hypervisor, support);
        hypervisor.Connect(xen);
        return xen;
    }

    /// <summary>
    /// KVM_GET_CLOCK: the VM's kvmclock in nanoseconds. Xen timers ask from thread-pool threads, also
    /// while the machine is being torn down: a failed read answers the last value instead of throwing.
    /// </summary>
    public ulong ReadTsc()
    {
        try
        {
            KvmClockData clock;
            VmIoctl(_vm, KvmIoctls.GetClock, &clock, "KVM_GET_CLOCK");
            ulong last = Volatile.Read(ref _lastClock);
            ulong now = Math.Max(clock.Clock, last);
            Interlocked.CompareExchange(ref _lastClock, now, last);
            return now;
        }
        catch (Exception e) when (e is LinuxException or ObjectDisposedException)
        {
            return Volatile.Read(ref _lastClock);
        }
    }

    /// <summary>Upcalls whose MSI KVM refused (the vCPU was nudged instead); Xen timers wake vCPUs from pool threads, so a failure is counted, never thrown.</summary>
    public long FailedWakeUps => Interlocked.Read(ref _failedWakeUps);

    /// <summary>
    /// Makes vCPU <paramref name="vcpuId"/> see its pending upcall: with a per-vCPU vector, an MSI to
    /// its local APIC (which also wakes it from HLT); else a nudge out of KVM_RUN, so KVM checks
    /// evtchn_upcall_pending again and injects the domain's vector.
    /// </summary>
    public void WakeVcpu(int vcpuId)
    {
        if ((uint)vcpuId >= (uint)_vcpuVectors.Length)
        {
            return;
        }

        try
        {
            byte own = Volatile.Read(ref _vcpuVectors[vcpuId]);
            if (own != 0 && Interface.TryGetPendingUpcall(vcpuId, out byte vector) && vector == own)
            {
                // Fixed delivery, edge: the Xen layer calls this on each 0→1 of evtchn_upcall_pending.
                ((KvmInterruptController)_vm.Interrupts).SignalMsi(MsiAddressBase | ((ulong)vcpuId << MsiDestinationShift), own);
                return;
            }
        }
        catch (Exception e) when (e is LinuxException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failedWakeUps);
        }

        _vm.Vcpu(vcpuId)?.Nudge();
    }

    public void StartVcpu(int vcpuId, VcpuState? state) =>
        throw new NotSupportedException("Xen PV vCPU start (VCPUOP_up) needs SharpVisor's PV CPU: PV domains run on the emulator");

    public void StopVcpu(int vcpuId) =>
        throw new NotSupportedException("Xen PV vCPU stop (VCPUOP_down) needs SharpVisor's PV CPU: PV domains run on the emulator");

    public void FlushVcpuTlb(int vcpuId, int callerVcpuId) =>
        throw new NotSupportedException("Xen PV TLB flushes need SharpVisor's PV CPU: PV domains run on the emulator");

    /// <summary>KVM_XEN_ATTR_TYPE_SHARED_INFO: a VM attribute, set at once from the calling vCPU's thread.</summary>
    public void SharedInfoPlaced(ulong address)
    {
        var attr = new KvmXenHvmAttr { Type = KvmXenHvmAttr.TypeSharedInfo, SharedInfoGfn = address >> 12 };
        VmIoctl(_vm, KvmIoctls.XenHvmSetAttr, &attr, "KVM_XEN_HVM_SET_ATTR(SHARED_INFO)");
    }

    /// <summary>KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO: queued for the vCPU's own thread (a vCPU ioctl waits while that vCPU runs).</summary>
    public void VcpuInfoPlaced(int vcpuId, ulong address) =>
        Queue(vcpuId, new KvmXenVcpuAttr { Type = KvmXenVcpuAttr.TypeVcpuInfo, Gpa = address == 0 ? KvmXenVcpuAttr.InvalidGpa : address });

    /// <summary>KVM_XEN_ATTR_TYPE_UPCALL_VECTOR: KVM injects it while a vcpu_info's evtchn_upcall_pending is set (0: off).</summary>
    public void CallbackVectorChanged(byte vector)
    {
        var attr = new KvmXenHvmAttr { Type = KvmXenHvmAttr.TypeUpcallVector, Vector = vector };
        VmIoctl(_vm, KvmIoctls.XenHvmSetAttr, &attr, "KVM_XEN_HVM_SET_ATTR(UPCALL_VECTOR)");
    }

    /// <summary>
    /// Kept here, not given to KVM: KVM uses a per-vCPU vector only for events it raises itself (its
    /// in-kernel ports and timers, not used), and the Xen layer's events go by MSI (<see cref="WakeVcpu"/>).
    /// </summary>
    public void VcpuUpcallVectorChanged(int vcpuId, byte vector)
    {
        if ((uint)vcpuId < (uint)_vcpuVectors.Length)
        {
            Volatile.Write(ref _vcpuVectors[vcpuId], vector);
        }
    }

    /// <summary>The CPUID table of a vCPU: KVM's leaves moved to 0x40000100, the Xen layer's at 0x40000000.</summary>
    internal KvmCpuidEntry2[] MergeCpuid(IReadOnlyList<KvmCpuidEntry2> entries, int vcpuId) => KvmXenCpuid.Merge(entries, Interface, vcpuId);

    /// <summary>A new vCPU (not running yet): with EVTCHN_SEND, KVM is told its Xen vCPU id.</summary>
    internal void VcpuCreated(KvmVcpu vcpu)
    {
        if (Support.HasEvtchnSend)
        {
            var attr = new KvmXenVcpuAttr { Type = KvmXenVcpuAttr.TypeVcpuId, VcpuId = (uint)vcpu.Id };
            vcpu.SetXenAttribute(attr, "KVM_XEN_VCPU_SET_ATTR(VCPU_ID)");
        }
    }

    /// <summary>
    /// On vCPU <paramref name="vcpu"/>'s thread before each KVM_RUN: the attributes queued for it, in
    /// order; on vCPU 0 also the Xen layer's interrupt check, which lowers a GSI/INTx callback line
    /// once the guest cleared evtchn_upcall_pending (QEMU does the same at its vCPU exits).
    /// </summary>
    internal void BeforeRun(KvmVcpu vcpu)
    {
        ApplyPending(vcpu);
        if (vcpu.Id == 0)
        {
            _ = Interface.TryGetPendingUpcall(0, out _);
        }
    }

    private void ApplyPending(KvmVcpu vcpu)
    {
        while (true)
        {
            KvmXenVcpuAttr attr;
            lock (_lock)
            {
                if (!_pending.TryGetValue(vcpu.Id, out Queue<KvmXenVcpuAttr>? queue) || !queue.TryDequeue(out attr))
                {
                    return;
                }
            }

            vcpu.SetXenAttribute(attr, $"KVM_XEN_VCPU_SET_ATTR(type {attr.Type})");
        }
    }

    private void Queue(int vcpuId, KvmXenVcpuAttr attr)
    {
        if ((uint)vcpuId >= (uint)_vcpuVectors.Length)
        {
            return;
        }

        lock (_lock)
        {
            if (!_pending.TryGetValue(vcpuId, out Queue<KvmXenVcpuAttr>? queue))
            {
                queue = new Queue<KvmXenVcpuAttr>();
                _pending[vcpuId] = queue;
            }

            queue.Enqueue(attr);
        }

        _vm.Vcpu(vcpuId)?.Nudge();
    }

    /// <summary>AuthenticAMD and HygonGenuine make hypercalls with VMMCALL; everyone else with VMCALL.</summary>
    private static bool IsAmdLike(IReadOnlyList<KvmCpuidEntry2> cpuid)
    {
        foreach (KvmCpuidEntry2 e in cpuid)
        {
            if (e.Function == 0)
            {
                return e.Ebx is 0x6874_7541 /* "Auth" */ or 0x6F67_7948 /* "Hygo" */;
            }
        }

        return false;
    }

    private static void VmIoctl(KvmVirtualMachine vm, nuint request, void* argument, string name)
    {
        if (LibC.Ioctl(vm.Fd, request, argument) < 0)
        {
            throw new LinuxException(name, Marshal.GetLastPInvokeError());
        }
    }
}
