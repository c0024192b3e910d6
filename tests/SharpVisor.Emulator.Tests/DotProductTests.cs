using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// DPPS/DPPD raise their exceptions stage by stage (multiply, pair sums, final sum), so a fault in a
/// later stage leaves the earlier stages' flags in MXCSR. Observed on an Intel Xeon: DPPS of
/// (MAX, MAX, -MAX, -MAX) · (1, 1, 1, 1) with only invalid unmasked faults with MXCSR 0x1F29
/// (IE from ∞ + −∞, OE and PE from the pair sums).
/// </summary>
public sealed class DotProductTests
{
    private const ulong Data = 0x20000;

    [Fact]
    public void DppsFaultInTheFinalSumKeepsThePairSumFlags()
    {
        using var t = new TestCpu();
        t.EnterLongMode();
        for (int i = 0; i < 4; i++)
        {
            t.Memory.Write(Data + (ulong)(4 * i), i < 2 ? float.MaxValue : -float.MaxValue);
            t.Memory.Write(Data + 16 + (ulong)(4 * i), 1.0f);
        }

        t.Memory.Write(Data + 32, 0x1F00u); // invalid unmasked, no flags
        t.Load(64, a =>
        {
            a.mov(eax, (uint)Data);
            a.ldmxcsr(__dword_ptr[rax + 32]);
            a.movaps(xmm0, __xmmword_ptr[rax]);
            a.movaps(xmm1, __xmmword_ptr[rax + 16]);
            a.dpps(xmm0, xmm1, 0xF1);
            a.hlt();
        });
        CpuRunResult result = t.Cpu.Run(100);
        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)ExceptionVector.SimdFloatingPoint, result.Exception!.Vector);
        Assert.Equal(0x1F29u, t.Cpu.Mxcsr);
        Assert.Equal(float.MaxValue, BitConverter.Int32BitsToSingle((int)(uint)t.Cpu.GetXmm(0))); // not written
    }

    [Fact]
    public void DppdWithMaskedExceptionsAccumulatesEveryStage()
    {
        using var t = new TestCpu();
        t.EnterLongMode();
        t.Memory.Write(Data, double.MaxValue);
        t.Memory.Write(Data + 8, -double.MaxValue);
        t.Memory.Write(Data + 16, 2.0);
        t.Memory.Write(Data + 24, 2.0);
        t.Load(64, a =>
        {
            a.mov(eax, (uint)Data);
            a.movapd(xmm0, __xmmword_ptr[rax]);
            a.movapd(xmm1, __xmmword_ptr[rax + 16]);
            a.dppd(xmm0, xmm1, 0x31);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(0x1F80u | 0x29u, t.Cpu.Mxcsr); // OE and PE from the products, IE from ∞ + −∞
        Assert.True(double.IsNaN(BitConverter.UInt64BitsToDouble((ulong)t.Cpu.GetXmm(0))));
    }
}
