using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>
/// SMEP, SMAP (with STAC/CLAC and RFLAGS.AC) and UMIP as a guest kernel turns them on: the CR4 pins
/// of kernel protection (docs/security.md) hold only if the CPU implements what they pin.
/// </summary>
public sealed class SupervisorProtectionTests
{
    private const ulong Cr4Umip = 1UL << 11;
    private const ulong Cr4Smep = 1UL << 20;
    private const ulong Cr4Smap = 1UL << 21;

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void BothVendorProfilesAdvertiseSmepSmapAndUmip(CpuVendor vendor)
    {
        CpuModel model = EmulatorCpuModel.Create(2_000_000_000, vendor);
        (_, uint ebx, uint ecx, _) = model.Query(7, 0, osxsave: false);
        Assert.NotEqual(0u, ebx & (1u << 7));
        Assert.NotEqual(0u, ebx & (1u << 20));
        Assert.NotEqual(0u, ecx & (1u << 2));

        using var m = new SystemMachine(model: model);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, cr4);
            a.or(rax, (int)(Cr4Umip | Cr4Smep | Cr4Smap));
            a.mov(cr4, rax);
            a.mov(rbx, cr4);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(Cr4Umip | Cr4Smep | Cr4Smap, m.Cpu.GetRegister(3) & (Cr4Umip | Cr4Smep | Cr4Smap));
    }

    [Theory]
    [InlineData("sgdt")]
    [InlineData("sidt")]
    [InlineData("sldt")]
    [InlineData("smsw")]
    [InlineData("str")]
    public void UmipMakesDescriptorTableStoresAGeneralProtectionFaultInUserMode(string instruction)
    {
        // With UMIP: #GP(0) at the instruction. Without: it runs and the next instruction (UD2) faults.
        Assert.Equal(13, RunInUserMode(instruction, umip: true, out ulong errorCode, out ulong rip));
        Assert.Equal(0UL, errorCode);
        Assert.Equal(SystemMachine.UserCode, rip);
        Assert.Equal(6, RunInUserMode(instruction, umip: false, out _, out rip));
        Assert.NotEqual(SystemMachine.UserCode, rip);
    }

    [Fact]
    public void UmipLeavesTheKernelItsDescriptorTableStores()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.sgdt(__[SystemMachine.UserDataArea]);
            a.smsw(rbx);
            a.str(cx);
            a.hlt();
        });
        m.EnterLongMode();
        SetCr4(m, Cr4Umip);
        m.RunToHalt();
        Assert.Equal(0x7FUL, m.Memory.Read<ushort>(SystemMachine.UserDataArea));
        Assert.Equal(SystemMachine.GdtAddress, m.Memory.Read<ulong>(SystemMachine.UserDataArea + 2));
        Assert.Equal((ulong)SystemMachine.Tss, m.Cpu.GetRegister(1) & 0xFFFF);
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void SmapRefusesSupervisorDataAccessToUserPagesUnlessRflagsAcIsSet(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        m.Memory.Write(SystemMachine.UserDataArea, 0x1122_3344_5566_7788UL);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.stac();
            a.mov(r8, __qword_ptr[SystemMachine.UserDataArea]);      // AC set: allowed
            a.mov(__qword_ptr[SystemMachine.UserDataArea + 8], r8);
            a.clac();
            a.pushfq();
            a.or(__qword_ptr[rsp], 1 << 18);                          // AC through POPF
            a.popfq();
            a.mov(r9, __qword_ptr[SystemMachine.UserDataArea]);
            a.pushfq();
            a.and(__qword_ptr[rsp], ~(1 << 18));
            a.popfq();
            a.mov(r10, 1);
            a.mov(r11, __qword_ptr[SystemMachine.UserDataArea]);     // AC clear: #PF
            a.hlt();
        });
        m.EnterLongMode();
        SetCr4(m, Cr4Smap);
        m.RunToHandler(14);
        Assert.Equal(0x1122_3344_5566_7788UL, m.Cpu.GetRegister(8));
        Assert.Equal(0x1122_3344_5566_7788UL, m.Cpu.GetRegister(9));
        Assert.Equal(0x1122_3344_5566_7788UL, m.Memory.Read<ulong>(SystemMachine.UserDataArea + 8));
        Assert.Equal(1UL, m.Cpu.GetRegister(10));
        Assert.Equal(0UL, m.Cpu.GetRegister(11));
        Assert.Equal(1UL, m.StackSlot(0));                   // present, supervisor read
        Assert.Equal(SystemMachine.UserDataArea, m.Cpu.Cr2);
    }

    [Fact]
    public void StacAndClacAreUndefinedInUserModeAndWithoutSmap()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.UserCode, a => a.stac());
        m.EnterUserMode();
        m.RunToHandler(6);
        Assert.Equal(SystemMachine.UserCode, m.StackSlot(0)); // no error code

        using var n = new SystemMachine(model: new CpuModel(CpuModel.Default.Features & ~CpuFeature.Smap));
        n.InstallHaltHandlers();
        n.Load(SystemMachine.KernelCode, a => a.clac());
        n.EnterLongMode();
        n.RunToHandler(6);
        Assert.Equal(SystemMachine.KernelCode, n.StackSlot(0));
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void SmepFaultsASupervisorFetchFromAUserPage(MmuMode mode)
    {
        using var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        m.Load(SystemMachine.UserCode, a => a.hlt());
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, SystemMachine.UserCode);
            a.jmp(rax);
        });
        m.EnterLongMode();
        SetCr4(m, Cr4Smep);
        m.RunToHandler(14);
        Assert.Equal(0x11UL, m.StackSlot(0));                // present, instruction fetch
        Assert.Equal(SystemMachine.UserCode, m.Cpu.Cr2);
    }

    private static int RunInUserMode(string instruction, bool umip, out ulong errorCode, out ulong rip)
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.UserCode, a =>
        {
            switch (instruction)
            {
                case "sgdt": a.sgdt(__[SystemMachine.UserDataArea]); break;
                case "sidt": a.sidt(__[SystemMachine.UserDataArea]); break;
                case "sldt": a.sldt(ax); break;
                case "smsw": a.smsw(ax); break;
                case "str": a.str(ax); break;
            }

            a.ud2();
        });
        m.EnterUserMode();
        SetCr4(m, umip ? Cr4Umip : 0);
        m.RunToHalt();
        int vector = (int)((m.Cpu.Rip - 1 - SystemMachine.HandlerCode) / 16);
        bool hasErrorCode = vector == 13;
        errorCode = hasErrorCode ? m.StackSlot(0) : 0;
        rip = m.StackSlot(hasErrorCode ? 1 : 0);
        return vector;
    }

    private static void SetCr4(SystemMachine m, ulong bits)
    {
        VcpuState state = m.Cpu.GetState();
        state.Cr4 |= bits;
        m.Cpu.SetState(state);
    }
}
