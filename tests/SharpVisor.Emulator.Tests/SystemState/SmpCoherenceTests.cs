using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>Two vCPUs over one memory, joined by one <see cref="WriteTracker"/>: code and shadow page tables stay coherent.</summary>
public sealed class SmpCoherenceTests
{
    private const ulong Function = 0x1C_0000;
    private const ulong CodeB = 0x1A_0000;

    /// <summary>A second CPU on the machine's memory with its own MMU, joined to the first CPU's write tracker.</summary>
    private static X86Cpu SecondCpu(SystemMachine m, MmuMode mode) =>
        new(new PhysicalMemory(m.Memory), mmu: MmuFactory.Create(mode, m.Memory, m.SecondLevel, null, m.Cpu.Mmu.Tracking.Tracker)) { DeliverExceptions = true };

    private static void Start(X86Cpu cpu, X86Cpu like, ulong rip, ulong rsp)
    {
        var state = like.GetState();
        state.Rip = rip;
        state.Rsp = rsp;
        cpu.SetState(state);
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void CodeModifiedOnOneCpuRunsModifiedOnTheOther(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        X86Cpu b = SecondCpu(m, mode);
        m.Load(Function, a =>
        {
            a.mov(eax, 1);
            a.ret();
        });

        // CPU B: call the function twice, halting after each call.
        m.Load(CodeB, a =>
        {
            a.mov(rbx, Function);
            a.call(rbx);
            a.mov(r8, rax);
            a.hlt();
            a.call(rbx);
            a.mov(r9, rax);
            a.hlt();
        });

        // CPU A: a store into the function's page first (so A holds a TLB write tag for it), then,
        // once B has cached the code, the patch.
        ulong patch = m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rdi, Function + 0x800);
            a.mov(__dword_ptr[rdi], 7);
            a.hlt();
        });
        m.Load(patch, a =>
        {
            a.mov(rdi, Function + 1);
            a.mov(__dword_ptr[rdi], 2);
            a.hlt();
        });
        m.EnterLongMode();
        Start(b, m.Cpu, CodeB, SystemMachine.KernelStackTop - 0x1000);

        m.RunToHalt();                                   // A: write tag for the page
        Assert.Equal(CpuStopReason.Halted, b.Run(1000).Reason); // B: decodes and runs the function
        Assert.Equal(1UL, b.GetRegister(8));

        Start(m.Cpu, m.Cpu, patch, SystemMachine.KernelStackTop);
        m.RunToHalt();                                   // A: patches (its write tag was revoked)
        Start(b, b, b.Rip, b.GetRegister(4));
        Assert.Equal(CpuStopReason.Halted, b.Run(1000).Reason);
        Assert.Equal(2UL, b.GetRegister(9));
    }

    [Fact]
    public void PageTableChangedOnOneCpuIsSeenByTheOtherAfterACr3Reload()
    {
        const MmuMode mode = MmuMode.Shadow;  // nested mode caches nothing but the TLB, like hardware
        using var m = new SystemMachine(mode);
        X86Cpu b = SecondCpu(m, mode);
        ulong window = SystemMachine.UserDataArea;
        ulong frameX = SystemMachine.UserDataArea + 0x1_0000;
        ulong frameY = SystemMachine.UserDataArea + 0x1_1000;
        m.Memory.Write(frameX, 0x11UL);
        m.Memory.Write(frameY, 0x22UL);
        m.MapPage(window, frameX, user: false);
        ulong pte = m.PteAddress(window);

        m.Load(CodeB, a =>
        {
            a.mov(rdi, window);
            a.mov(r8, __qword_ptr[rdi]);   // 0x11: B's shadow caches window -> X
            a.hlt();
            a.mov(rax, cr3);
            a.mov(cr3, rax);               // a full TLB flush, as a shootdown IPI may do
            a.mov(r9, __qword_ptr[rdi]);   // must be 0x22
            a.hlt();
        });
        ulong remap = m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rbx, pte);
            a.mov(rax, __qword_ptr[rbx]);  // A reads the page table (and gets it into its TLB)
            a.hlt();
        });
        m.Load(remap, a =>
        {
            a.mov(rax, frameY | 3);
            a.mov(__qword_ptr[rbx], rax);  // ... then remaps the window
            a.hlt();
        });
        m.EnterLongMode();
        Start(b, m.Cpu, CodeB, SystemMachine.KernelStackTop - 0x1000);

        m.RunToHalt();
        Assert.Equal(CpuStopReason.Halted, b.Run(1000).Reason);
        Assert.Equal(0x11UL, b.GetRegister(8));
        Assert.True(m.Cpu.Mmu.Tracking.Tracker.IsTracked(pte));

        Start(m.Cpu, m.Cpu, remap, SystemMachine.KernelStackTop);
        m.RunToHalt();
        Start(b, b, b.Rip, b.GetRegister(4));
        Assert.Equal(CpuStopReason.Halted, b.Run(1000).Reason);
        Assert.Equal(0x22UL, b.GetRegister(9));
    }
}
