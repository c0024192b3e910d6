using SharpVisor.Machine;

namespace SharpVisor.Emulator;

/// <summary>Conversion between the core's state and the accelerator-neutral <see cref="VcpuState"/>.</summary>
public sealed partial class X86Cpu
{
    public VcpuState GetState()
    {
        var s = new VcpuState
        {
            Rax = _regs[0], Rcx = _regs[1], Rdx = _regs[2], Rbx = _regs[3],
            Rsp = _regs[4], Rbp = _regs[5], Rsi = _regs[6], Rdi = _regs[7],
            R8 = _regs[8], R9 = _regs[9], R10 = _regs[10], R11 = _regs[11],
            R12 = _regs[12], R13 = _regs[13], R14 = _regs[14], R15 = _regs[15],
            Rip = _rip,
            Rflags = GetRflags(),
            Es = _segs[SegEs].ToMachine(),
            Cs = _segs[SegCs].ToMachine(),
            Ss = _segs[SegSs].ToMachine(),
            Ds = _segs[SegDs].ToMachine(),
            Fs = _segs[SegFs].ToMachine(),
            Gs = _segs[SegGs].ToMachine(),
            Tr = _tr.ToMachine(),
            Ldt = _ldtr.ToMachine(),
            Gdt = new DescriptorTable(_gdtBase, _gdtLimit),
            Idt = new DescriptorTable(_idtBase, _idtLimit),
            Cr0 = _cr0,
            Cr2 = _cr2,
            Cr3 = _cr3,
            Cr4 = _cr4,
            Cr8 = Cr8,
            Efer = _efer,
            ApicBase = _apicBase,
        };
        return s;
    }

    /// <summary>
    /// Loads the architectural state (the VMM's boot state, a restored snapshot): wakes a halted or
    /// shut-down CPU; the MMU reloads the paging state. Invalid PAE PDPTEs throw <see cref="ArgumentException"/>.
    /// </summary>
    public void SetState(VcpuState s)
    {
        _regs[0] = s.Rax;
        _regs[1] = s.Rcx;
        _regs[2] = s.Rdx;
        _regs[3] = s.Rbx;
        _regs[4] = s.Rsp;
        _regs[5] = s.Rbp;
        _regs[6] = s.Rsi;
        _regs[7] = s.Rdi;
        _regs[8] = s.R8;
        _regs[9] = s.R9;
        _regs[10] = s.R10;
        _regs[11] = s.R11;
        _regs[12] = s.R12;
        _regs[13] = s.R13;
        _regs[14] = s.R14;
        _regs[15] = s.R15;
        _rip = s.Rip;
        SetRflags(s.Rflags);
        _segs[SegEs] = SegmentCache.FromMachine(s.Es);
        _segs[SegCs] = SegmentCache.FromMachine(s.Cs);
        _segs[SegSs] = SegmentCache.FromMachine(s.Ss);
        _segs[SegDs] = SegmentCache.FromMachine(s.Ds);
        _segs[SegFs] = SegmentCache.FromMachine(s.Fs);
        _segs[SegGs] = SegmentCache.FromMachine(s.Gs);
        _tr = SegmentCache.FromMachine(s.Tr);
        _ldtr = SegmentCache.FromMachine(s.Ldt);
        _gdtBase = s.Gdt.Base;
        _gdtLimit = s.Gdt.Limit;
        _idtBase = s.Idt.Base;
        _idtLimit = s.Idt.Limit;
        _cr0 = s.Cr0;
        _cr2 = s.Cr2;
        _cr3 = s.Cr3;
        _cr4 = s.Cr4;
        _cr8 = s.Cr8 & 0xF;
        Platform?.WriteCr8(this, _cr8);
        _efer = s.Efer;
        _apicBase = s.ApicBase;
        _halted = false;
        _shutdownReason = null;
        _interruptShadowEnd = -1;
        UpdateMode();
        LoadMmuControlRegisters();
    }
}
