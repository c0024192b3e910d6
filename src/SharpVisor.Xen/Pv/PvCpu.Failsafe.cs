using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// What Xen does when a return to the guest cannot load the guest's selectors: DS, ES, FS or GS at
/// a context switch (load_segments in xen/arch/x86/domain.c: the bad selector is loaded as null and
/// the vCPU enters its failsafe callback with the selectors it should have had on the frame), and
/// CS or SS at the iretq that ends HYPERVISOR_iret (entry.S's exception_with_ints_disabled: the
/// fault is made to look as if it happened in guest context, so the guest's own #GP handler gets it).
/// </summary>
public sealed partial class PvCpu
{
    /// <summary>RFLAGS bits load_segments clears on the way into the failsafe callback: TF, NT, RF, VM, AC and IOPL.</summary>
    private const ulong FailsafeClearedFlags = (1UL << 8) | (1UL << 14) | (1UL << 16) | (1UL << 17) | (1UL << 18) | FlagsIopl;

    /// <summary>The failsafe frame: { RCX, R11, DS, ES, FS, GS, RIP, CS | mask &lt;&lt; 32, RFLAGS, RSP, SS }.</summary>
    public const int FailsafeFrameBytes = 11 * 8;

    /// <summary>
    /// Xen's load_segments at the first context switch into vCPU <paramref name="vcpuId"/>, which
    /// VCPUOP_up starts with <paramref name="start"/>: when a DS/ES/FS/GS selector of its context did
    /// not load, the vCPU starts in its failsafe callback instead — in guest kernel mode, on its
    /// stack (the kernel stack when the context was in user mode) the frame with the selectors the
    /// context named, events masked when the callback was registered so. The frame is written
    /// through the vCPU's own kernel page tables, as Xen writes it after switching to them. With no
    /// failsafe callback, or a frame that cannot be written, the domain is crashed and null returned
    /// (the vCPU does not start).
    /// </summary>
    internal VcpuState? LoadSegmentsAtStart(int vcpuId, VcpuState start)
    {
        ArgumentNullException.ThrowIfNull(start);
        PvVcpuState vcpu = _vcpus[vcpuId];
        if (vcpu.PendingFailsafeSegments is not { } selectors)
        {
            return start;
        }

        vcpu.PendingFailsafeSegments = null;
        _domain.Counters.Increment("pv-failsafe");
        string segments = $"DS 0x{selectors[0]:x} ES 0x{selectors[1]:x} FS 0x{selectors[2]:x} GS 0x{selectors[3]:x}";
        if (vcpu.FailsafeCallback == 0)
        {
            return StartCrash($"vCPU {vcpuId}: {segments} do not all load at its first context switch, and no failsafe callback is registered");
        }

        ulong info = _domain.VcpuInfoOf(vcpuId);
        byte mask = info != 0 ? Memory.Read<byte>(info + SharedInfoLayout.UpcallMask) : (byte)1;
        ulong frameFlags = (start.Rflags & ~(FlagsInterrupt | FlagsIopl)) | (mask == 0 ? FlagsInterrupt : 0);
        ulong cs = start.Cs.Selector;
        ulong sp;
        if (vcpu.KernelMode)
        {
            cs &= ~3UL;
            sp = start.Rsp;
        }
        else
        {
            // toggle_guest_mode: the kernel's page tables and GS base.
            vcpu.KernelMode = true;
            start.Cr3 = _domain.PvPaging(vcpuId).KernelBase << 12;
            ulong user = start.Gs.Base;
            start.Gs.Base = vcpu.PendingShadowGsBase ?? 0;
            vcpu.PendingShadowGsBase = user;
            sp = vcpu.KernelStack;
        }

        sp &= ~0xFUL;
        ulong frameSp = sp - FailsafeFrameBytes;
        ulong[] frame =
        [
            start.Rcx, start.R11, selectors[0], selectors[1], selectors[2], selectors[3],
            start.Rip, cs | ((ulong)mask << 32), frameFlags, start.Rsp, start.Ss.Selector,
        ];
        byte[] bytes = new byte[FailsafeFrameBytes];
        for (int i = 0; i < frame.Length; i++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 8), frame[i]);
        }

        if ((sp > HypervisorVirtStart && sp <= HypervisorVirtEnd + 64)
            || !_tables.TryWriteVirtual(start.Cr3 >> 12, frameSp, bytes))
        {
            return StartCrash($"vCPU {vcpuId}: error creating the failsafe callback frame at 0x{frameSp:x}");
        }

        if (vcpu.FailsafeMasksEvents && info != 0)
        {
            Memory.Write(info + SharedInfoLayout.UpcallMask, (byte)1);
        }

        TryResolve(FlatKernelCs, [], 0, SelectorUse.Code, out SegmentRegister flatCs);
        TryResolve(FlatKernelSs, [], 0, SelectorUse.Stack, out SegmentRegister flatSs);
        start.Cs = flatCs;
        start.Ss = flatSs;
        start.Rip = vcpu.FailsafeCallback;
        start.Rsp = frameSp;
        start.Rflags &= ~FailsafeClearedFlags;
        _domain.LogPv($"vCPU {vcpuId}: {segments} do not all load: failsafe callback 0x{vcpu.FailsafeCallback:x}, frame at 0x{frameSp:x}");
        return start;
    }

    private VcpuState? StartCrash(string reason)
    {
        _domain.Counters.Increment("pv-domain-crash");
        _domain.LogPv($"domain crash: {reason}");
        _domain.CrashPvDomain(reason);
        return null;
    }

    /// <summary>
    /// The iretq ending HYPERVISOR_iret faulted on <paramref name="selector"/> (the frame's CS, else
    /// its SS, RPL 3): Xen lets the fault happen "in guest context" — the guest's trap-table handler
    /// gets it with the state the iret was returning to (RIP, CS, RFLAGS, RSP, SS of the frame) —
    /// #NP for a CS whose descriptor is not present, #SS for such an SS, #GP otherwise, the error
    /// code the selector (0 for a null one). No handler crashes the domain, never the host.
    /// </summary>
    private void IretFault(IParavirtualCpuContext cpu, PvVcpuState vcpu, ushort cs, ushort ss, bool csFailed)
    {
        ushort selector = csFailed ? cs : ss;
        byte vector = 13;
        if ((selector & 0xFFFC) != 0 && DescriptorNotPresent(vcpu.Id, selector, csFailed))
        {
            vector = csFailed ? (byte)11 : (byte)12;
        }

        uint errorCode = (uint)(selector & 0xFFFC);
        _tables.Counters.Increment("pv-refused-iret-selector");
        _domain.TracePv($"iret to CS 0x{cs:x} SS 0x{ss:x}: #{vector}({errorCode:x}) in guest context");
        (ulong address, byte flags) = vcpu.Traps[vector];
        if (address == 0)
        {
            Crash(cpu, $"iret to CS 0x{cs:x} SS 0x{ss:x}: not loadable at CPL 3, and no handler for exception {vector} in the trap table");
            return;
        }

        _domain.Counters.Increment($"pv-trap-{vector}");
        Bounce(cpu, vcpu, address, ((flags & 4) != 0 ? BounceInterrupt : 0) | BounceErrorCode, errorCode, cpu.Rip, cs, ss);
    }

    /// <summary>
    /// Whether the vCPU's GDT (the hypervisor's checked copy) holds at <paramref name="selector"/> a
    /// descriptor of the right kind (code for CS, writable data for SS) that is not present: the
    /// processor checks the type before presence, so only then is the fault #NP or #SS.
    /// </summary>
    private bool DescriptorNotPresent(int vcpuId, ushort selector, bool code)
    {
        int index = selector >> 3;
        if ((selector & 4) != 0 || index >= 16 * 512)
        {
            return false;
        }

        ulong descriptor = Memory.Read<ulong>((_gdtFrames[vcpuId] << 12) + ((ulong)index * 8));
        bool isCode = (descriptor & (1UL << 43)) != 0;
        bool kindFits = (descriptor & DescriptorCodeOrData) != 0 && (code ? isCode : !isCode && (descriptor & (1UL << 41)) != 0);
        return kindFits && (descriptor & DescriptorPresent) == 0;
    }
}
