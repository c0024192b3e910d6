using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>Stores into guest code invalidate the decoded blocks that cover it, interpreted or translated (tier 1).</summary>
public sealed class SelfModifyingCodeTests
{
    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    public void StoreIntoTheRunningBlockTakesEffectAtTheNextInstruction(ExecutionTier tier)
    {
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        Label patched = default;
        t.Load(64, a =>
        {
            patched = a.CreateLabel();
            a.lea(rbx, __[patched]);
            a.mov(__byte_ptr[rbx + 1], 42); // mov eax, 7 becomes mov eax, 42
            a.Label(ref patched);
            a.mov(eax, 7);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(42UL, t.Cpu.GetRegister(0));
    }

    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    public void RewrittenLoopBodyRunsTheNewCode(ExecutionTier tier)
    {
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        t.Load(64, a =>
        {
            Label body = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 10);
            a.lea(rbx, __[body]);
            a.Label(ref body);
            a.db(0x83, 0xC0, 0x01); // add eax, 1: the immediate becomes 100 after the fifth pass
            a.cmp(ecx, 6);
            Label skip = a.CreateLabel();
            a.jne(skip);
            a.mov(__byte_ptr[rbx + 2], 100);
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(body);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal((5 * 1) + (5 * 100), (int)t.Cpu.GetRegister(0));
    }
}
