using SharpVisor.Emulator.Platform;
using SharpVisor.Machine.CpuTemplates;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// What one emulated vCPU asks of the machine around it: MSRs beyond the core go to the
/// software platform (local APIC, TSC deadline, kvmclock) or to <see cref="VcpuMsrs"/>; the TSC
/// is the platform's time base (one clock for every vCPU, frozen while the machine is paused);
/// CPUID gains the KVM hypervisor leaves, the hypervisor/x2APIC/TSC-deadline bits and this
/// vCPU's APIC id; CR8 is the local APIC's task priority.
/// </summary>
public sealed class EmulatorCpuPlatform : ICpuPlatform
{
    private const uint HypervisorBit = 1u << 31;
    private const uint X2ApicBit = 1u << 21;
    private const uint TscDeadlineBit = 1u << 24;
    private const uint ApicBit = 1u << 9;
    private const uint TopologyLevelSmt = 1;
    private const uint TopologyLevelCore = 2;
    private const uint HypervisorLeafFirst = 0x4000_0000;
    private const uint HypervisorLeafLast = 0x4FFF_FFFF;

    private readonly SoftwarePlatform _platform;
    private readonly LocalApic _apic;
    private readonly int _vcpuId;
    private readonly int _vcpuCount;
    private readonly Func<SharpVisor.Machine.IHypercallHandler?>? _hypercalls;
    private readonly IHypervisorInterface? _hypervisor;
    private EmulatorParavirtualContext? _paravirtualContext;

    /// <param name="hypercalls">The machine's hypercall handler (KVM's ABI), read at each call; used when no hypervisor interface is attached.</param>
    /// <param name="hypervisor">The hypervisor interface (Xen) that owns CPUID 0x40000000+, its MSRs, hypercalls and upcalls; null: none.</param>
    public EmulatorCpuPlatform(SoftwarePlatform platform, int vcpuId, int vcpuCount, Func<SharpVisor.Machine.IHypercallHandler?>? hypercalls = null, IHypervisorInterface? hypervisor = null)
    {
        ArgumentNullException.ThrowIfNull(platform);
        ArgumentOutOfRangeException.ThrowIfNegative(vcpuId);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(vcpuId, vcpuCount);
        _platform = platform;
        _apic = platform.IrqChip.GetLocalApic(vcpuId);
        _vcpuId = vcpuId;
        _vcpuCount = vcpuCount;
        _hypercalls = hypercalls;
        _hypervisor = hypervisor;
    }

    public VcpuMsrs Msrs { get; } = new();

    /// <summary>The AMD-only MSRs, answered when the vCPU presents the AMD profile.</summary>
    public AmdMsrs AmdMsrs { get; } = new();

    public bool TryReadMsr(X86Cpu cpu, uint index, out ulong value)
    {
        if (_hypervisor is not null && _hypervisor.TryReadMsr(_vcpuId, index, out value))
        {
            return true;
        }

        if (SoftwarePlatform.HandlesMsr(index))
        {
            return _platform.ReadMsr(_vcpuId, index, out value);
        }

        if (cpu.Model.Vendor == CpuVendor.Amd && AmdMsrs.Handles(index))
        {
            return AmdMsrs.TryRead(index, out value);
        }

        return Msrs.TryRead(index, out value);
    }

    public bool TryWriteMsr(X86Cpu cpu, uint index, ulong value)
    {
        if (_hypervisor is not null && _hypervisor.TryWriteMsr(_vcpuId, index, value, out bool accepted))
        {
            return accepted;
        }

        if (SoftwarePlatform.HandlesMsr(index))
        {
            bool written = _platform.WriteMsr(_vcpuId, index, value);
            if (LocalApic.HandlesMsr(index))
            {
                // x2APIC EOI, TPR, self-IPI, ...: what is deliverable may have changed.
                cpu.RequestEventCheck();
            }

            return written;
        }

        if (cpu.Model.Vendor == CpuVendor.Amd && AmdMsrs.Handles(index))
        {
            return AmdMsrs.TryWrite(index, value);
        }

        return Msrs.TryWrite(index, value);
    }

    public ulong ReadTsc() => _platform.Time.ReadTsc();

    /// <summary>The machine's CPU template, applied last to every CPUID answer; null: none.</summary>
    public CpuTemplate? Template { get; init; }

    public void AdjustCpuid(X86Cpu cpu, uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx)
    {
        AdjustCpuidForPlatform(leaf, subleaf, ref eax, ref ebx, ref ecx, ref edx);
        Template?.ApplyCpuid(leaf, subleaf, ref eax, ref ebx, ref ecx, ref edx);
    }

    private void AdjustCpuidForPlatform(uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx)
    {
        if (_hypervisor is not null && leaf is >= HypervisorLeafFirst and <= HypervisorLeafLast)
        {
            // The interface's leaves replace KVM's entirely: a guest must not find both.
            CpuidResult r = _hypervisor.TryGetCpuid(_vcpuId, leaf, subleaf, out CpuidResult answer) ? answer : default;
            (eax, ebx, ecx, edx) = (r.Eax, r.Ebx, r.Ecx, r.Edx);
            return;
        }

        if (KvmCpuid.TryGetLeaf(leaf, out uint a, out uint b, out uint c, out uint d))
        {
            (eax, ebx, ecx, edx) = (a, b, c, d);
            return;
        }

        uint apicId = (uint)_vcpuId;
        switch (leaf)
        {
            case 1:
                ebx = (ebx & 0x00FF_FFFF) | (apicId << 24);
                ecx |= HypervisorBit | X2ApicBit | TscDeadlineBit;
                edx |= ApicBit;
                break;

            case 0xB:
                // Extended topology: one thread per core, every vCPU a core of one package.
                // EDX is the x2APIC id at every level; ECX echoes the level number.
                edx = apicId;
                ecx = subleaf & 0xFF;
                if (subleaf == 0)
                {
                    (eax, ebx) = (0, 1);
                    ecx |= TopologyLevelSmt << 8;
                }
                else if (subleaf == 1)
                {
                    eax = (uint)BitsFor(_vcpuCount);
                    ebx = (uint)_vcpuCount;
                    ecx |= TopologyLevelCore << 8;
                }
                else
                {
                    (eax, ebx) = (0, 0);
                }

                break;
        }
    }

    public ulong ReadCr8(X86Cpu cpu) => (_apic.TaskPriority >> 4) & 0xF;

    /// <summary>A lower priority may unmask a pending interrupt: it is taken right after the MOV CR8, as on hardware.</summary>
    public void WriteCr8(X86Cpu cpu, ulong value)
    {
        _apic.TaskPriority = (uint)(value & 0xF) << 4;
        cpu.RequestEventCheck();
    }

    public bool TryHypercall(X86Cpu cpu)
    {
        if (_hypervisor is null)
        {
            // No Xen: KVM's hypercall ABI, when the machine has a handler for it.
            return _hypercalls?.Invoke() is { } handler && cpu.TryRunHypercall(handler, _vcpuId);
        }

        var context = new EmulatorHypercallContext(cpu, _vcpuId);
        _hypervisor.Hypercall(context);
        if (context.HaltRequested)
        {
            // SCHEDOP_block: sleep as after HLT; the upcall (or any interrupt) wakes the CPU.
            cpu._halted = true;
        }

        return true;
    }

    public bool TryParavirtualSyscall(X86Cpu cpu, ulong returnRip) =>
        Paravirtual is { } pv && Run(cpu, context => pv.OnSyscall(context, returnRip));

    public bool TryParavirtualEvent(X86Cpu cpu, ParavirtualEvent e) =>
        Paravirtual is { } pv && Run(cpu, context => pv.OnEvent(context, e));

    /// <summary>The domain's PV CPU (Xen PV), asked at each use: a PV domain attaches it before its vCPUs run.</summary>
    private IParavirtualCpu? Paravirtual => (_hypervisor as IParavirtualCpuProvider)?.ParavirtualCpu;

    private bool Run(X86Cpu cpu, Func<EmulatorParavirtualContext, bool> handler)
    {
        _paravirtualContext ??= new EmulatorParavirtualContext(cpu, _vcpuId, Control ?? new SharpVisor.Machine.MachineControl());
        _paravirtualContext.HaltRequested = false;
        bool handled = handler(_paravirtualContext);
        if (_paravirtualContext.HaltRequested)
        {
            cpu._halted = true;
        }

        return handled;
    }

    /// <summary>Where a PV CPU's domain crash goes (the VM's control); set by the vCPU.</summary>
    internal SharpVisor.Machine.MachineControl? Control { get; set; }

    /// <summary>The vector of an upcall the hypervisor interface has pending for this vCPU.</summary>
    internal bool TryGetPendingUpcall(out byte vector)
    {
        vector = 0;
        return _hypervisor is not null && _hypervisor.TryGetPendingUpcall(_vcpuId, out vector);
    }

    /// <summary>Bits of the APIC id that number the cores of a package holding <paramref name="count"/>.</summary>
    private static int BitsFor(int count)
    {
        int bits = 0;
        while ((1 << bits) < count)
        {
            bits++;
        }

        return bits;
    }
}
