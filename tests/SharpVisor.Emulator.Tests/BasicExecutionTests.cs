using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

public sealed class BasicExecutionTests
{
    [Fact]
    public void LoopSumsIntegers()
    {
        using var t = new TestCpu();
        t.EnterLongMode();
        t.Load(64, a =>
        {
            Label loop = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 100);
            a.Label(ref loop);
            a.add(rax, rcx);
            a.dec(rcx);
            a.jnz(loop);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(5050UL, t.Cpu.GetRegister(0));
        Assert.Equal(0UL, t.Cpu.GetRegister(1));
    }

    [Fact]
    public void CallRetAndStackWork()
    {
        using var t = new TestCpu();
        t.EnterLongMode();
        t.Load(64, a =>
        {
            Label fn = a.CreateLabel();
            a.mov(rbx, 7);
            a.call(fn);
            a.hlt();
            a.Label(ref fn);
            a.push(rbx);
            a.pop(rax);
            a.imul(rax, rax, 6);
            a.ret();
        });
        t.RunToHalt();
        Assert.Equal(42UL, t.Cpu.GetRegister(0));
        Assert.Equal(TestCpu.StackTop, t.Cpu.GetRegister(4));
    }

    [Fact]
    public void DivideByZeroRaisesDivideError()
    {
        using var t = new TestCpu();
        t.EnterLongMode();
        t.Load(64, a =>
        {
            a.xor(ecx, ecx);
            a.div(rcx);
            a.hlt();
        });
        CpuRunResult result = t.Cpu.Run();
        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)ExceptionVector.DivideError, result.Exception!.Vector);
        Assert.Equal(TestCpu.CodeAddress + 2, t.Cpu.Rip);
    }
}
