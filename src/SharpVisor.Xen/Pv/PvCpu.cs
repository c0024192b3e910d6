using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// Xen's PV CPU for one domain (xen/arch/x86/pv, x86_64/entry.S): the guest kernel runs at CPL 3
/// with Xen's flat selectors, and this class takes what it cannot do there — hypercalls by
/// SYSCALL from guest kernel mode, system calls from guest user mode (the syscall callback),
/// exceptions and the event upcall (bounced to the trap table or the event callback on the guest
/// kernel's stack), the iret hypercall, the privileged instructions Xen emulates for PV
/// (WRMSR/RDMSR of the segment bases, port I/O, CR reads, SWAPGS, CLTS, HLT, the forced-emulation
/// CPUID prefix), and the switch between the kernel and user page tables.
/// </summary>
public sealed partial class PvCpu : IParavirtualCpu, IPvMmuHost
{
    // Xen's flat selectors (arch-x86/xen-x86_64.h): the guest kernel and user both run in ring 3.
    public const ushort FlatKernelCs = 0xE033;
    public const ushort FlatKernelSs = 0xE02B;
    public const ushort FlatUserCs32 = 0xE023;

    /// <summary>Where each vCPU's GDT is mapped (supervisor-only) in Xen's range: L4 slot 256, L3 slot 1, 64 KiB per vCPU.</summary>
    public const ulong GdtVirtualBase = 0xFFFF_8000_4000_0000;

    /// <summary>Guest GDT entries: 14 pages (Xen's FIRST_RESERVED_GDT_ENTRY); the next page holds Xen's flat descriptors.</summary>
    public const int GuestGdtEntries = 14 * 512;

    private const ulong HypervisorVirtStart = 0xFFFF_8000_0000_0000;
    private const ulong HypervisorVirtEnd = 0xFFFF_8800_0000_0000;

    private const ulong FlagsInterrupt = 1UL << 9;
    private const ulong FlagsIopl = 3UL << 12;
    private const ulong FlagsUserSettable = 0x3F_7FD5;   // CF PF AF ZF SF TF IF DF OF IOPL NT RF VM AC VIF VIP ID
    private const ulong VgcfInSyscall = 1UL << 8;

    // TBF_* flags of a bounce.
    private const int BounceErrorCode = 1;
    private const int BounceInterrupt = 2;

    [ThreadStatic]
    private static IParavirtualCpuContext? t_current;

    private readonly XenDomain _domain;
    private readonly PvPageTables _tables;
    private readonly PvVcpuState[] _vcpus;
    private readonly IReadOnlyList<ulong> _gdtFrames;

    /// <param name="gdtFrames">Per vCPU, the first of its 16 hypervisor frames holding the GDT the CPU uses.</param>
    public PvCpu(XenDomain domain, PvPageTables tables, IReadOnlyList<ulong> gdtFrames)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(tables);
        ArgumentNullException.ThrowIfNull(gdtFrames);
        _domain = domain;
        _tables = tables;
        _gdtFrames = gdtFrames;
        _vcpus = new PvVcpuState[gdtFrames.Count];
        for (int i = 0; i < _vcpus.Length; i++)
        {
            _vcpus[i] = new PvVcpuState(i);
            WriteFlatDescriptors(i);
        }

        tables.Connect(this);
    }

    /// <summary>The linear address of vCPU <paramref name="vcpuId"/>'s GDT (its GDTR base; limit 0xFFFF).</summary>
    public static ulong GdtBase(int vcpuId) => GdtVirtualBase + ((ulong)vcpuId * 0x10000);

    private Memory.GuestMemory Memory => _domain.Memory;

    // ---- SYSCALL: hypercalls and system calls -----------------------------------------------

    public bool OnSyscall(IParavirtualCpuContext cpu, ulong returnRip)
    {
        ArgumentNullException.ThrowIfNull(cpu);
        t_current = cpu;
        PvVcpuState vcpu = _vcpus[cpu.VcpuId];
        TakePendingStart(cpu, vcpu);
        ulong flags = cpu.Rflags;
        cpu.SetRegister(1, returnRip);        // as the instruction does: RCX = return RIP, R11 = RFLAGS
        cpu.SetRegister(11, flags);
        cpu.Rip = returnRip;
        if (vcpu.KernelMode)
        {
            if (cpu.GetRegister(0) == (ulong)HypercallOp.Iret)
            {
                _domain.Counters.Increment("Iret");
                Iret(cpu, vcpu);
                _domain.TracePv($"iret to 0x{cpu.Rip:x} CS 0x{cpu.GetSelector(ParavirtualSegment.Cs):x} RSP 0x{cpu.GetRegister(4):x}");
            }
            else
            {
                _domain.RunPvHypercall(cpu);
            }

            return true;
        }

        // A system call from guest user mode: Xen's syscall callback on the kernel stack.
        _domain.Counters.Increment("pv-syscalls");
        if (vcpu.SyscallCallback == 0)
        {
            cpu.Rip = returnRip - 2;
            return Exception(cpu, vcpu, 6, null, returnRip - 2);
        }

        Bounce(cpu, vcpu, vcpu.SyscallCallback, vcpu.SyscallMasksEvents ? BounceInterrupt : 0, 0, returnRip);
        cpu.Rflags &= ~(1UL << 10);          // the PV ABI clears DF on a system call
        return true;
    }

    // ---- exceptions and interrupts ----------------------------------------------------------

    public bool OnEvent(IParavirtualCpuContext cpu, ParavirtualEvent e)
    {
        ArgumentNullException.ThrowIfNull(cpu);
        t_current = cpu;
        PvVcpuState vcpu = _vcpus[cpu.VcpuId];
        TakePendingStart(cpu, vcpu);
        switch (e.Kind)
        {
            case ParavirtualEventKind.External:
                if (vcpu.EventCallback != 0 && !UpcallMasked(cpu.VcpuId))
                {
                    _domain.Counters.Increment("pv-upcalls");
                    Bounce(cpu, vcpu, vcpu.EventCallback, BounceInterrupt, 0, e.ReturnRip);
                }

                return true;

            case ParavirtualEventKind.Nmi:
                return true;

            case ParavirtualEventKind.Software:
                return SoftwareInterrupt(cpu, vcpu, e);

            default:
                if (e.Vector == 13 && e.ErrorCode == 0 && TryEmulatePrivileged(cpu, vcpu))
                {
                    return true;
                }

                if (e.Vector == 6 && TryForcedEmulation(cpu))
                {
                    return true;
                }

                if (e.Vector == 14 && e.ErrorCode is uint pageFault && TryEmulatePageTableWrite(cpu, vcpu, pageFault))
                {
                    return true;
                }

                return Exception(cpu, vcpu, e.Vector, e.ErrorCode, e.ReturnRip);
        }
    }

    /// <summary>Whether vCPU <paramref name="vcpuId"/> should take the event upcall now: pending, not masked, a callback registered.</summary>
    internal bool UpcallDeliverable(int vcpuId, ulong vcpuInfo) =>
        _vcpus[vcpuId].EventCallback != 0 && vcpuInfo != 0
        && Memory.Read<byte>(vcpuInfo + SharedInfoLayout.UpcallPending) != 0
        && Memory.Read<byte>(vcpuInfo + SharedInfoLayout.UpcallMask) == 0;

    private bool SoftwareInterrupt(IParavirtualCpuContext cpu, PvVcpuState vcpu, ParavirtualEvent e)
    {
        // Xen's IDT lets INT3 and INTO through; any other INT n faults to Xen, which checks the
        // guest's DPL for it (permit_softint) and else reflects #GP(vector << 3 | 2) at the INT.
        (ulong address, byte flags) = vcpu.Traps[e.Vector];
        int needed = vcpu.KernelMode ? 1 : 3;
        if (e.Vector is not 3 and not 4 && (flags & 3) < needed)
        {
            ulong at = e.ReturnRip - 2;
            cpu.Rip = at;
            return Exception(cpu, vcpu, 13, ((uint)e.Vector << 3) | 2, at);
        }

        if (address == 0)
        {
            return Crash(cpu, $"software interrupt 0x{e.Vector:x2} with no handler in the trap table");
        }

        Bounce(cpu, vcpu, address, (flags & 4) != 0 ? BounceInterrupt : 0, 0, e.ReturnRip);
        return true;
    }

    /// <summary>do_guest_trap: the trap table's handler for <paramref name="vector"/>, with the error code when the vector has one.</summary>
    private bool Exception(IParavirtualCpuContext cpu, PvVcpuState vcpu, byte vector, uint? errorCode, ulong returnRip)
    {
        _domain.Counters.Increment($"pv-trap-{vector}");
        _domain.TracePv($"trap {vector} error 0x{errorCode ?? 0:x} at 0x{returnRip:x} CR2 0x{cpu.Cr2:x}");
        if (vector == 14)
        {
            // Xen gives the guest CR2 through vcpu_info.arch.cr2.
            ulong info = _domain.VcpuInfoOf(cpu.VcpuId);
            if (info != 0)
            {
                Memory.Write(info + 16, cpu.Cr2);
            }
        }

        (ulong address, byte flags) = vcpu.Traps[vector];
        if (address == 0)
        {
            // For the report: the return addresses in the kernel's top half among the first 64 stack words.
            byte[] top = new byte[512];
            string stack = cpu.TryReadVirtual(cpu.GetRegister(4), top)
                ? $", stack {string.Join(' ', Enumerable.Range(0, 64).Select(i => BitConverter.ToUInt64(top, i * 8)).Where(v => v >> 32 == 0xFFFF_FFFF).Select(v => v.ToString("x", System.Globalization.CultureInfo.InvariantCulture)))}"
                : string.Empty;
            _domain.LogPv($"vCPU {cpu.VcpuId}: unhandled exception {vector} at 0x{returnRip:x}, RSP 0x{cpu.GetRegister(4):x}{stack}");
            return Crash(cpu, $"exception {vector} (error 0x{errorCode ?? 0:x}{(vector == 14 ? $", CR2 0x{cpu.Cr2:x}" : string.Empty)}) at 0x{returnRip:x} with no handler in the trap table");
        }

        Bounce(cpu, vcpu, address, ((flags & 4) != 0 ? BounceInterrupt : 0) | (errorCode is null ? 0 : BounceErrorCode), errorCode ?? 0, returnRip);
        return true;
    }

    /// <summary>
    /// create_bounce_frame: { RCX, R11, [error code], RIP, CS | saved mask &lt;&lt; 32, RFLAGS, RSP, SS } on the
    /// guest kernel's stack (its registered stack when coming from user mode, 16-byte aligned),
    /// then the handler in kernel mode with Xen's flat kernel selectors.
    /// </summary>
    /// <param name="frameCs">The CS for the frame when it is not the one loaded (a return that failed to load it).</param>
    /// <param name="frameSs">Likewise the SS.</param>
    private void Bounce(IParavirtualCpuContext cpu, PvVcpuState vcpu, ulong handler, int bounceFlags, uint errorCode, ulong returnRip, ushort? frameCs = null, ushort? frameSs = null)
    {
        ulong rsp = cpu.GetRegister(4);
        ushort cs = frameCs ?? cpu.GetSelector(ParavirtualSegment.Cs);
        ushort ss = frameSs ?? cpu.GetSelector(ParavirtualSegment.Ss);
        ulong flags = cpu.Rflags;
        ulong frameSp;
        if (vcpu.KernelMode)
        {
            frameSp = rsp;
            cs = (ushort)(cs & 0xFFFC);      // tells the guest it came from its kernel
        }
        else
        {
            ToggleMode(cpu, vcpu);
            frameSp = vcpu.KernelStack;
        }

        frameSp &= ~0xFUL;
        if (frameSp > HypervisorVirtStart && frameSp <= HypervisorVirtEnd + 64)
        {
            Crash(cpu, $"guest stack 0x{frameSp:x} for a bounce is in Xen's range");
            return;
        }

        ulong info = _domain.VcpuInfoOf(cpu.VcpuId);
        byte savedMask = info != 0 ? Memory.Read<byte>(info + SharedInfoLayout.UpcallMask) : (byte)1;
        if ((bounceFlags & BounceInterrupt) != 0 && info != 0)
        {
            Memory.Write(info + SharedInfoLayout.UpcallMask, (byte)1);
        }

        ulong guestFlags = (flags & ~(FlagsInterrupt | FlagsIopl)) | (savedMask == 0 ? FlagsInterrupt : 0);
        var frame = new List<ulong> { cpu.GetRegister(1), cpu.GetRegister(11) };
        if ((bounceFlags & BounceErrorCode) != 0)
        {
            frame.Add(errorCode);
        }

        frame.AddRange([returnRip, cs | ((ulong)savedMask << 32), guestFlags, rsp, ss]);
        frameSp -= (ulong)frame.Count * 8;
        byte[] bytes = new byte[frame.Count * 8];
        for (int i = 0; i < frame.Count; i++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 8), frame[i]);
        }

        if (!cpu.TryWriteVirtual(frameSp, bytes))
        {
            Crash(cpu, $"fault writing a bounce frame at 0x{frameSp:x} (handler 0x{handler:x})");
            return;
        }

        // TF, VM, RF, NT and AC are cleared on the way in, as on a hardware trap.
        cpu.Rflags = (flags & ~((1UL << 8) | (1UL << 17) | (1UL << 16) | (1UL << 14) | (1UL << 18))) | FlagsInterrupt;
        if (!cpu.TryLoadSegment(ParavirtualSegment.Cs, FlatKernelCs) || !cpu.TryLoadSegment(ParavirtualSegment.Ss, FlatKernelSs))
        {
            Crash(cpu, "Xen's flat kernel selectors do not load");
            return;
        }

        cpu.SetRegister(4, frameSp);
        cpu.Rip = handler;
        _domain.Counters.Increment("pv-bounces");
        _domain.TracePv($"bounce to 0x{handler:x}, frame at 0x{frameSp:x}");
    }

    /// <summary>
    /// HYPERVISOR_iret: pops { RAX, R11, RCX, flags, RIP, CS, RFLAGS, RSP, SS } from the guest
    /// stack; a CS with RPL 3 returns to user mode (the user page tables); CS and SS are forced to
    /// RPL 3 and RFLAGS.IF to 1, so the guest can never reach ring 0; the event mask follows IF.
    /// A CS or SS that does not load is the guest's fault at the return (<see cref="IretFault"/>).
    /// </summary>
    private void Iret(IParavirtualCpuContext cpu, PvVcpuState vcpu)
    {
        byte[] bytes = new byte[9 * 8];
        if (!cpu.TryReadVirtual(cpu.GetRegister(4), bytes))
        {
            Crash(cpu, "fault reading the iret frame from the guest stack");
            return;
        }

        ulong Q(int i) => BitConverter.ToUInt64(bytes, i * 8);
        (ulong rax, ulong r11, ulong rcx, ulong flags, ulong rip, ulong cs, ulong rflags, ulong rsp, ulong ss) =
            (Q(0), Q(1), Q(2), Q(3), Q(4), Q(5), Q(6), Q(7), Q(8));
        if ((cs & 3) == 3)
        {
            if (_domain.PvPaging(cpu.VcpuId).UserBase == 0)
            {
                Crash(cpu, "iret to user mode with no user page tables");
                return;
            }

            ToggleMode(cpu, vcpu);
        }

        // do_iret sets the registers; the iretq that follows loads CS and SS (and may fault on them).
        ushort newCs = (ushort)(cs | 3), newSs = (ushort)(ss | 3);
        ushort oldCs = cpu.GetSelector(ParavirtualSegment.Cs);
        bool csLoaded = cpu.TryLoadSegment(ParavirtualSegment.Cs, newCs);
        bool loaded = csLoaded && cpu.TryLoadSegment(ParavirtualSegment.Ss, newSs);
        if (csLoaded && !loaded)
        {
            cpu.TryLoadSegment(ParavirtualSegment.Cs, oldCs);   // the iretq loads both or neither
        }

        cpu.Rip = rip;
        cpu.Rflags = (rflags & FlagsUserSettable & ~(FlagsIopl | (1UL << 17))) | FlagsInterrupt | 2;
        cpu.SetRegister(4, rsp);
        if ((flags & VgcfInSyscall) == 0)
        {
            cpu.SetRegister(11, r11);
            cpu.SetRegister(1, rcx);
        }

        ulong info = _domain.VcpuInfoOf(cpu.VcpuId);
        if (info != 0)
        {
            Memory.Write(info + SharedInfoLayout.UpcallMask, (byte)((rflags & FlagsInterrupt) == 0 ? 1 : 0));
        }

        cpu.SetRegister(0, rax);
        if (!loaded)
        {
            IretFault(cpu, vcpu, newCs, newSs, !csLoaded);
        }
    }

    /// <summary>toggle_guest_mode: kernel ↔ user, the other L4 in CR3 and the GS bases swapped (Xen's SWAPGS).</summary>
    private void ToggleMode(IParavirtualCpuContext cpu, PvVcpuState vcpu)
    {
        vcpu.KernelMode = !vcpu.KernelMode;
        (cpu.GsBase, cpu.KernelGsBase) = (cpu.KernelGsBase, cpu.GsBase);
        LoadRoot(cpu, vcpu);
    }

    private void LoadRoot(IParavirtualCpuContext cpu, PvVcpuState vcpu)
    {
        PvVcpuPaging paging = _domain.PvPaging(vcpu.Id);
        ulong root = !vcpu.KernelMode && paging.UserBase != 0 ? paging.UserBase : paging.KernelBase;
        if (root != 0)
        {
            cpu.SetPageTableRoot(root << 12);
        }
    }

    private bool UpcallMasked(int vcpuId)
    {
        ulong info = _domain.VcpuInfoOf(vcpuId);
        return info == 0 || Memory.Read<byte>(info + SharedInfoLayout.UpcallMask) != 0;
    }

    private bool Crash(IParavirtualCpuContext cpu, string reason)
    {
        _domain.Counters.Increment("pv-domain-crash");
        _domain.LogPv($"vCPU {cpu.VcpuId}: domain crash: {reason}");
        cpu.CrashDomain($"Xen PV: {reason}");
        return true;
    }

    // ---- IPvMmuHost: what page-table updates ask of the vCPUs --------------------------------

    void IPvMmuHost.FlushAll(int vcpuId)
    {
        if (vcpuId < 0)
        {
            FlushEverywhere(null);
        }
        else
        {
            t_current?.FlushTlb();
        }
    }

    void IPvMmuHost.FlushPage(int vcpuId, ulong linearAddress)
    {
        if (vcpuId < 0)
        {
            FlushEverywhere(linearAddress);
        }
        else
        {
            t_current?.FlushTlbPage(linearAddress);
        }
    }

    void IPvMmuHost.BaseChanged(PvVcpuPaging vcpu)
    {
        if (t_current is { } cpu && cpu.VcpuId == vcpu.VcpuId)
        {
            LoadRoot(cpu, _vcpus[vcpu.VcpuId]);
        }
    }
}
