using SharpVisor.Interop.Kvm;
using SharpVisor.Machine;

namespace SharpVisor.Kvm.Tests;

public unsafe class KvmStateConversionTests
{
    [Fact]
    public void StateSurvivesARoundTripThroughKvmRegsAndSregs()
    {
        var state = new VcpuState
        {
            Rax = 1, Rbx = 2, Rcx = 3, Rdx = 4, Rsi = 5, Rdi = 6, Rsp = 7, Rbp = 8,
            R8 = 9, R9 = 10, R10 = 11, R11 = 12, R12 = 13, R13 = 14, R14 = 15, R15 = 16,
            Rip = 0xFFFF_FFFF_8100_0000, Rflags = 0x246,
            Cs = SegmentRegister.Flat(0x10, 0xB, longMode: true, defaultBig: false),
            Ss = SegmentRegister.Flat(0x18, 0x3, longMode: false, defaultBig: true),
            Tr = new SegmentRegister { Base = 0x1000, Limit = 0x67, Selector = 0x28, Type = 0xB, Present = true },
            Ldt = new SegmentRegister { Unusable = true },
            Gdt = new DescriptorTable(0x500, 0x27),
            Idt = new DescriptorTable(0x9000, 0xFFF),
            Cr0 = 0x8005_0033, Cr2 = 0xDEAD_0000, Cr3 = 0x1000, Cr4 = 0x6B0, Cr8 = 2, Efer = 0xD01,
            ApicBase = 0xFEE0_0900,
        };

        KvmRegs regs = KvmStateConversion.ToKvmRegs(state);
        KvmSregs sregs = default;
        sregs.InterruptBitmap[1] = 0x8000;
        KvmStateConversion.CopyTo(state, ref sregs);
        VcpuState back = KvmStateConversion.ToVcpuState(regs, sregs);

        Assert.Equal(state.Format(), back.Format());
        Assert.Equal(state.R13, back.R13);
        Assert.Equal(state.Cs, back.Cs);
        Assert.Equal(state.Ss, back.Ss);
        Assert.Equal(state.Tr, back.Tr);
        Assert.Equal(state.Ldt, back.Ldt);
        Assert.Equal(state.Cr8, back.Cr8);
        Assert.Equal(state.ApicBase, back.ApicBase);
        Assert.Equal(0x8000UL, sregs.InterruptBitmap[1]);
    }

    [Fact]
    public void SegmentFieldsMapOneToOne()
    {
        var segment = new SegmentRegister
        {
            Base = 0xF_0000, Limit = 0xFFFF, Selector = 0xF000, Type = 0x3, Present = true, Dpl = 3,
            DefaultBig = true, Long = false, Granularity = true, CodeOrData = true,
        };

        KvmSegment kvm = KvmStateConversion.ToKvmSegment(segment);

        Assert.Equal((0xF_0000UL, 0xFFFFu, (ushort)0xF000, (byte)3, (byte)1, (byte)3, (byte)1, (byte)0, (byte)1, (byte)1, (byte)0),
            (kvm.Base, kvm.Limit, kvm.Selector, kvm.Type, kvm.Present, kvm.Dpl, kvm.Db, kvm.L, kvm.G, kvm.S, kvm.Unusable));
        Assert.Equal(segment, KvmStateConversion.ToSegment(kvm));
    }
}
