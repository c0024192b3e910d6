using SharpVisor.Interop.Kvm;
using SharpVisor.Machine;

namespace SharpVisor.Kvm;

/// <summary>Maps the accelerator-neutral <see cref="VcpuState"/> to and from kvm_regs/kvm_sregs.</summary>
public static class KvmStateConversion
{
    public static VcpuState ToVcpuState(in KvmRegs regs, in KvmSregs sregs) => new()
    {
        Rax = regs.Rax,
        Rbx = regs.Rbx,
        Rcx = regs.Rcx,
        Rdx = regs.Rdx,
        Rsi = regs.Rsi,
        Rdi = regs.Rdi,
        Rsp = regs.Rsp,
        Rbp = regs.Rbp,
        R8 = regs.R8,
        R9 = regs.R9,
        R10 = regs.R10,
        R11 = regs.R11,
        R12 = regs.R12,
        R13 = regs.R13,
        R14 = regs.R14,
        R15 = regs.R15,
        Rip = regs.Rip,
        Rflags = regs.Rflags,
        Cs = ToSegment(sregs.Cs),
        Ds = ToSegment(sregs.Ds),
        Es = ToSegment(sregs.Es),
        Fs = ToSegment(sregs.Fs),
        Gs = ToSegment(sregs.Gs),
        Ss = ToSegment(sregs.Ss),
        Tr = ToSegment(sregs.Tr),
        Ldt = ToSegment(sregs.Ldt),
        Gdt = new DescriptorTable(sregs.Gdt.Base, sregs.Gdt.Limit),
        Idt = new DescriptorTable(sregs.Idt.Base, sregs.Idt.Limit),
        Cr0 = sregs.Cr0,
        Cr2 = sregs.Cr2,
        Cr3 = sregs.Cr3,
        Cr4 = sregs.Cr4,
        Cr8 = sregs.Cr8,
        Efer = sregs.Efer,
        ApicBase = sregs.ApicBase,
    };

    public static KvmRegs ToKvmRegs(VcpuState state) => new()
    {
        Rax = state.Rax,
        Rbx = state.Rbx,
        Rcx = state.Rcx,
        Rdx = state.Rdx,
        Rsi = state.Rsi,
        Rdi = state.Rdi,
        Rsp = state.Rsp,
        Rbp = state.Rbp,
        R8 = state.R8,
        R9 = state.R9,
        R10 = state.R10,
        R11 = state.R11,
        R12 = state.R12,
        R13 = state.R13,
        R14 = state.R14,
        R15 = state.R15,
        Rip = state.Rip,
        Rflags = state.Rflags,
    };

    /// <summary>Overwrites the architectural fields of <paramref name="sregs"/>; the pending-interrupt bitmap is kept.</summary>
    public static void CopyTo(VcpuState state, ref KvmSregs sregs)
    {
        sregs.Cs = ToKvmSegment(state.Cs);
        sregs.Ds = ToKvmSegment(state.Ds);
        sregs.Es = ToKvmSegment(state.Es);
        sregs.Fs = ToKvmSegment(state.Fs);
        sregs.Gs = ToKvmSegment(state.Gs);
        sregs.Ss = ToKvmSegment(state.Ss);
        sregs.Tr = ToKvmSegment(state.Tr);
        sregs.Ldt = ToKvmSegment(state.Ldt);
        sregs.Gdt = new KvmDtable { Base = state.Gdt.Base, Limit = state.Gdt.Limit };
        sregs.Idt = new KvmDtable { Base = state.Idt.Base, Limit = state.Idt.Limit };
        sregs.Cr0 = state.Cr0;
        sregs.Cr2 = state.Cr2;
        sregs.Cr3 = state.Cr3;
        sregs.Cr4 = state.Cr4;
        sregs.Cr8 = state.Cr8;
        sregs.Efer = state.Efer;
        sregs.ApicBase = state.ApicBase;
    }

    public static SegmentRegister ToSegment(in KvmSegment s) => new()
    {
        Base = s.Base,
        Limit = s.Limit,
        Selector = s.Selector,
        Type = s.Type,
        Present = s.Present != 0,
        Dpl = s.Dpl,
        DefaultBig = s.Db != 0,
        Long = s.L != 0,
        Granularity = s.G != 0,
        CodeOrData = s.S != 0,
        Unusable = s.Unusable != 0,
    };

    public static KvmSegment ToKvmSegment(in SegmentRegister s) => new()
    {
        Base = s.Base,
        Limit = s.Limit,
        Selector = s.Selector,
        Type = (byte)(s.Type & 0xF),
        Present = (byte)(s.Present ? 1 : 0),
        Dpl = (byte)(s.Dpl & 3),
        Db = (byte)(s.DefaultBig ? 1 : 0),
        L = (byte)(s.Long ? 1 : 0),
        G = (byte)(s.Granularity ? 1 : 0),
        S = (byte)(s.CodeOrData ? 1 : 0),
        Unusable = (byte)(s.Unusable ? 1 : 0),
    };
}
