using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

public sealed class InterruptDeliveryTests
{
    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void UserPageFaultSwitchesToTheKernelStackWithExactErrorCodeAndCr2(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        ulong missing = SystemMachine.UserDataArea + 0x5000;
        m.UnmapPage(missing);
        ulong faulting = 0;
        m.Load(SystemMachine.UserCode, a =>
        {
            a.mov(rbx, missing + 8);
            a.mov(__qword_ptr[rbx], rax);
            a.hlt();
        });
        faulting = SystemMachine.UserCode + 10;
        m.EnterLongMode();
        m.Load(SystemMachine.KernelCode, a =>
        {
            // IRETQ to CPL 3.
            a.push(SystemMachine.UserData);
            a.push((int)SystemMachine.UserStackTop);
            a.push(0x202);
            a.push(SystemMachine.UserCode64);
            a.push((int)SystemMachine.UserCode);
            a.iretq();
        });

        m.RunToHandler(14);
        Assert.Equal(0, m.Cpu.CurrentPrivilegeLevel);
        Assert.Equal(missing + 8, m.Cpu.Cr2);
        Assert.Equal(0x6UL, m.StackSlot(0));                     // not present, write, user
        Assert.Equal(faulting, m.StackSlot(1));                   // RIP of the store
        Assert.Equal((ulong)SystemMachine.UserCode64, m.StackSlot(2));
        Assert.Equal(0x202UL, m.StackSlot(3) & 0x202);
        Assert.Equal(SystemMachine.UserStackTop, m.StackSlot(4));
        Assert.Equal((ulong)SystemMachine.UserData, m.StackSlot(5));
        Assert.Equal(SystemMachine.KernelStackTop - (6 * 8), m.Cpu.GetRegister(4));
    }
}
