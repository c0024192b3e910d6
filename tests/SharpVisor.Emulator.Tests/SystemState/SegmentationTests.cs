using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>Segment-register loads with descriptor checks, and the descriptor-table instructions.</summary>
public sealed class SegmentationTests
{
    private const ushort ExecuteOnlyCode = 0x58;
    private const ushort NotPresentData = 0x60;
    private const ushort ReadOnlyData = 0x68;

    private static SystemMachine CreateMachine()
    {
        var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.SetGdtEntry(11, SystemMachine.Descriptor(0x8, 0));                  // execute-only code
        m.SetGdtEntry(12, SystemMachine.Descriptor(0x3, 0, present: false));  // not-present data
        m.SetGdtEntry(13, SystemMachine.Descriptor(0x1, 0));                  // read-only data
        return m;
    }

    [Theory]
    [InlineData("ds", ExecuteOnlyCode, 13, ExecuteOnlyCode)]
    [InlineData("ds", NotPresentData, 11, NotPresentData)]
    [InlineData("ss", NotPresentData, 12, NotPresentData)]
    [InlineData("ss", ReadOnlyData, 13, ReadOnlyData)]
    [InlineData("ss", SystemMachine.KernelCode64, 13, SystemMachine.KernelCode64)]
    [InlineData("ds", 0x1000, 13, 0x1000)]                                // beyond the GDT limit
    [InlineData("es", SystemMachine.KernelData | 3, 13, SystemMachine.KernelData)] // RPL 3 > DPL 0
    [InlineData("fs", SystemMachine.Tss, 13, SystemMachine.Tss)]          // a system descriptor
    [InlineData("gs", 0x4, 13, 0x4)]                                      // LDT selector with no LDT
    public void BadSegmentLoadsFaultWithTheSelectorAsErrorCode(string register, int selector, int vector, int errorCode)
    {
        using SystemMachine m = CreateMachine();
        AssemblerRegisterSegment segment = register switch
        {
            "ds" => ds,
            "ss" => ss,
            "es" => es,
            "fs" => fs,
            _ => gs,
        };
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, selector);
            a.mov(segment, ax);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHandler(vector);
        Assert.Equal((ulong)errorCode, m.StackSlot(0));
        Assert.Equal(SystemMachine.KernelCode + 5, m.StackSlot(1));
    }

    [Fact]
    public void GoodLoadsSetTheAccessedBitAndNullSelectorsAreAllowedWhereTheArchitectureSaysSo()
    {
        using SystemMachine m = CreateMachine();
        m.SetGdtEntry(14, SystemMachine.Descriptor(0x2, 0)); // read/write data, accessed bit clear
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, 0x70);
            a.mov(ds, ax);
            a.xor(eax, eax);
            a.mov(fs, ax);       // null data selector: fine
            a.mov(ss, ax);       // null SS: fine in 64-bit mode at CPL 0
            a.push(rax);         // and the stack still works
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.NotEqual(0UL, m.Memory.Read<ulong>(SystemMachine.GdtAddress + (14 * 8)) & (1UL << 40));
        Assert.Equal(0x70, m.Cpu.GetSegmentSelector(3));
        Assert.Equal(0, m.Cpu.GetSegmentSelector(2));
    }

    [Fact]
    public void UserModeCannotLoadKernelDataOrANullStack()
    {
        using SystemMachine m = CreateMachine();
        m.Load(SystemMachine.UserCode, a =>
        {
            a.mov(eax, SystemMachine.UserData);
            a.mov(ds, ax);                      // fine
            a.mov(eax, SystemMachine.KernelData | 3);
            a.mov(es, ax);                      // DPL 0 < CPL 3
        });
        m.EnterUserMode();
        m.RunToHandler(13);
        Assert.Equal((ulong)SystemMachine.KernelData, m.StackSlot(0));
        Assert.Equal((ulong)SystemMachine.UserData, (ulong)m.Cpu.GetSegmentSelector(3) & 0xFFFF);

        using SystemMachine n = CreateMachine();
        n.Load(SystemMachine.UserCode, a =>
        {
            a.xor(eax, eax);
            a.mov(ss, ax);
        });
        n.EnterUserMode();
        n.RunToHandler(13);
        Assert.Equal(0UL, n.StackSlot(0));
    }

    [Fact]
    public void LslLarVerrVerwReportWhatTheCplMaySee()
    {
        using SystemMachine m = CreateMachine();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ecx, SystemMachine.UserData);
            a.lsl(eax, ecx);
            a.setz(r8b);
            a.mov(r12, rax);                       // limit
            a.mov(ecx, SystemMachine.UserCode64);
            a.lar(eax, ecx);
            a.setz(r9b);
            a.mov(r13, rax);                       // access rights
            a.mov(ecx, SystemMachine.KernelCode64);
            a.verw(cx);
            a.setz(r10b);                          // code is never writable
            a.verr(cx);
            a.setz(r11b);                          // readable code
            a.mov(ecx, 0x7FF8);
            a.lsl(eax, ecx);
            a.setz(r14b);                          // beyond the GDT: ZF = 0
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(1UL, m.Cpu.GetRegister(8) & 0xFF);
        Assert.Equal(0xFFFF_FFFFUL, m.Cpu.GetRegister(12));
        Assert.Equal(1UL, m.Cpu.GetRegister(9) & 0xFF);
        Assert.Equal(0xFBUL, (m.Cpu.GetRegister(13) >> 8) & 0xFF); // P, DPL 3, code, accessed
        Assert.Equal(0UL, m.Cpu.GetRegister(10) & 0xFF);
        Assert.Equal(1UL, m.Cpu.GetRegister(11) & 0xFF);
        Assert.Equal(0UL, m.Cpu.GetRegister(14) & 0xFF);
    }

    [Fact]
    public void DescriptorTableRegistersRoundTripAndLtrMarksTheTssBusy()
    {
        using SystemMachine m = CreateMachine();
        ulong area = SystemMachine.UserDataArea;
        m.SetGdtEntry(14, 0x67UL | ((0x3400UL & 0xFF_FFFF) << 16) | (0x89UL << 40));
        m.SetGdtEntry(15, 0);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rdi, area);
            a.sgdt(__[rdi]);
            a.sidt(__[rdi + 16]);
            a.mov(eax, 0x70);
            a.ltr(ax);
            a.str(r8w);
            a.sldt(r9w);
            a.ltr(ax);                  // busy now: #GP(0x70)
        });
        m.EnterLongMode();
        m.RunToHandler(13);
        Assert.Equal((ushort)0x7F, m.Memory.Read<ushort>(area));
        Assert.Equal(SystemMachine.GdtAddress, m.Memory.Read<ulong>(area + 2));
        Assert.Equal((ushort)0xFFF, m.Memory.Read<ushort>(area + 16));
        Assert.Equal(SystemMachine.IdtAddress, m.Memory.Read<ulong>(area + 18));
        Assert.Equal(0x70UL, m.Cpu.GetRegister(8) & 0xFFFF);
        Assert.Equal(0UL, m.Cpu.GetRegister(9) & 0xFFFF);
        Assert.Equal(0x8BUL, (m.Memory.Read<ulong>(SystemMachine.GdtAddress + (14 * 8)) >> 40) & 0xFF);
        Assert.Equal(0x70UL, m.StackSlot(0));
    }

    [Fact]
    public void SegmentsLoadFromTheLdt()
    {
        using SystemMachine m = CreateMachine();
        const ulong ldt = 0x5800;
        m.Memory.Write(ldt + 8, SystemMachine.Descriptor(0x3, 0) & ~0xFF_FFFF_0000UL | (0x12345UL << 16)); // base 0x12345
        m.SetGdtEntry(14, 0xFFUL | ((ldt & 0xFF_FFFF) << 16) | (0x82UL << 40));
        m.SetGdtEntry(15, 0);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(eax, 0x70);
            a.lldt(ax);
            a.mov(eax, 0x0C);           // LDT index 1, RPL 0
            a.mov(fs, ax);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(0x0C, m.Cpu.GetSegmentSelector(4));
        Assert.Equal(0x12345UL, m.Cpu.GetSegmentBase(4));
    }
}
