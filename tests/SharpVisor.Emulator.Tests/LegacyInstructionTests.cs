using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// Instructions that exist only in 16/32-bit code (the differential harness runs 64-bit code), checked
/// against the SDM's worked examples: BCD adjustments, SALC, BOUND and ARPL.
/// </summary>
public sealed class LegacyInstructionTests
{
    private const ulong Data = 0x20000;

    private static TestCpu Run32(Action<Assembler> build)
    {
        var t = new TestCpu();
        t.EnterProtectedMode32();
        t.Load(32, a =>
        {
            build(a);
            a.hlt();
        });
        t.RunToHalt();
        return t;
    }

    private static bool Flag(TestCpu t, ulong bit) => (t.Cpu.Rflags & bit) != 0;

    [Fact]
    public void DaaAdjustsPackedBcdAddition()
    {
        using TestCpu t = Run32(a =>
        {
            a.mov(al, 0x79);
            a.add(al, 0x35);
            a.daa(); // 79 + 35 = 114 decimal
        });
        Assert.Equal(0x14UL, t.Cpu.GetRegister(0) & 0xFF);
        Assert.True(Flag(t, RflagsBits.Carry));
    }

    [Fact]
    public void DasAdjustsPackedBcdSubtraction()
    {
        using TestCpu t = Run32(a =>
        {
            a.mov(al, 0x35);
            a.sub(al, 0x47);
            a.das(); // 35 - 47 = -12: 88 with a borrow
        });
        Assert.Equal(0x88UL, t.Cpu.GetRegister(0) & 0xFF);
        Assert.True(Flag(t, RflagsBits.Carry));
    }

    [Fact]
    public void AaaAndAasAdjustUnpackedBcd()
    {
        using TestCpu add = Run32(a =>
        {
            a.mov(eax, 0x0008);
            a.add(al, 9);
            a.aaa(); // 8 + 9 = 17: AH 1, AL 7
        });
        Assert.Equal(0x0107UL, add.Cpu.GetRegister(0) & 0xFFFF);
        Assert.True(Flag(add, RflagsBits.Carry | RflagsBits.Adjust));

        using TestCpu sub = Run32(a =>
        {
            a.mov(eax, 0x0003);
            a.sub(al, 8);
            a.aas(); // 3 - 8: AL 5 with a borrow out of AH
        });
        Assert.Equal(0xFF05UL, sub.Cpu.GetRegister(0) & 0xFFFF);
        Assert.True(Flag(sub, RflagsBits.Carry));
    }

    [Fact]
    public void AamAndAadConvertBetweenBinaryAndUnpackedBcd()
    {
        using TestCpu t = Run32(a =>
        {
            a.mov(eax, 63);
            a.aam(10); // AH 6, AL 3
            a.mov(ebx, eax);
            a.aad(10); // back to 63
        });
        Assert.Equal(0x0603UL, t.Cpu.GetRegister(3) & 0xFFFF);
        Assert.Equal(63UL, t.Cpu.GetRegister(0) & 0xFFFF);
    }

    [Fact]
    public void AamWithZeroBaseIsDivideError()
    {
        using var t = new TestCpu();
        t.EnterProtectedMode32();
        t.Load(32, a =>
        {
            a.aam(0);
            a.hlt();
        });
        CpuRunResult result = t.Cpu.Run(10);
        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)ExceptionVector.DivideError, result.Exception!.Vector);
    }

    [Fact]
    public void SalcCopiesCarryIntoAl()
    {
        using TestCpu t = Run32(a =>
        {
            a.stc();
            a.db(0xD6); // SALC
            a.mov(ebx, eax);
            a.clc();
            a.db(0xD6);
        });
        Assert.Equal(0xFFUL, t.Cpu.GetRegister(3) & 0xFF);
        Assert.Equal(0UL, t.Cpu.GetRegister(0) & 0xFF);
    }

    [Theory]
    [InlineData(5, false)]
    [InlineData(-10, false)]
    [InlineData(20, false)]
    [InlineData(21, true)]
    [InlineData(-11, true)]
    public void BoundChecksASignedRange(int index, bool outOfRange)
    {
        using var t = new TestCpu();
        t.EnterProtectedMode32();
        t.Memory.Write(Data, -10);
        t.Memory.Write(Data + 4, 20);
        t.Load(32, a =>
        {
            a.mov(eax, index);
            a.bound(eax, __qword_ptr[(uint)Data]);
            a.hlt();
        });
        CpuRunResult result = t.Cpu.Run(10);
        if (outOfRange)
        {
            Assert.Equal(CpuStopReason.Exception, result.Reason);
            Assert.Equal((byte)ExceptionVector.BoundRange, result.Exception!.Vector);
        }
        else
        {
            Assert.Equal(CpuStopReason.Halted, result.Reason);
        }
    }

    [Fact]
    public void ArplRaisesTheRequestedPrivilegeLevel()
    {
        using TestCpu t = Run32(a =>
        {
            a.mov(eax, 0x0010);
            a.mov(ecx, 0x002B);
            a.arpl(ax, cx); // RPL 0 < 3: raised, ZF = 1
            a.setz(bl);
            a.arpl(ax, cx); // already 3: unchanged, ZF = 0
            a.setz(bh);
        });
        Assert.Equal(0x13UL, t.Cpu.GetRegister(0) & 0xFFFF);
        Assert.Equal(0x0001UL, t.Cpu.GetRegister(3) & 0xFFFF);
    }
}
