using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Tests.SystemState;
using SharpVisor.Machine.Protection;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Protection;

/// <summary>
/// The locked GDT (docs/security.md): after the lock a vCPU filters stores to the frame of the
/// GDT it uses — the TLS slots (entries 12-14) and the TSS busy bit may change, any other
/// descriptor may not (#PF with RSVD, reported, memory unchanged) — through any alias, and LGDT
/// may not move the table.
/// </summary>
public sealed class DescriptorTableProtectionTests
{
    private const ulong KernelCsEntry = SystemMachine.GdtAddress + (2 * 8);
    private const ulong TlsEntry = SystemMachine.GdtAddress + (12 * 8);

    // A second mapping of the GDT's frame (what get_cpu_gdt_rw is to Linux's read-only fixmap alias).
    private const ulong GdtAlias = 0x3F_F000;

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void OnlyTheTlsSlotsOfALockedGdtMayChange(MmuMode mode)
    {
        using var m = Setup(mode, enforce: true, out RecordingMonitor monitor);
        ulong kernelCs = m.Memory.Read<ulong>(KernelCsEntry);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(rax, 0x00CF_F300_0000_FFFFUL);
            a.mov(__qword_ptr[TlsEntry], rax);                          // a TLS slot: allowed
            a.mov(__qword_ptr[GdtAlias + (13 * 8)], rax);               // another, through the alias
            a.mov(rbx, kernelCs);
            a.mov(__qword_ptr[GdtAlias + (2 * 8)], rbx);                // the same value: allowed
            a.mov(r8, 1);
            a.bts(__qword_ptr[GdtAlias + (2 * 8)], 45);                 // kernel CS DPL: refused
            a.hlt();
        });
        m.EnterLongMode();
        m.Cpu.SyncProtection();
        m.RunToHandler(14);

        Assert.Equal(0x00CF_F300_0000_FFFFUL, m.Memory.Read<ulong>(TlsEntry));
        Assert.Equal(0x00CF_F300_0000_FFFFUL, m.Memory.Read<ulong>(TlsEntry + 8));
        Assert.Equal(kernelCs, m.Memory.Read<ulong>(KernelCsEntry));
        Assert.Equal(1UL, m.Cpu.GetRegister(8));
        Assert.Equal((ulong)(MmuBase.ProtectionFaultCode | PageFaultErrorCode.Write), m.StackSlot(0));
        Assert.Equal(GdtAlias + (2 * 8), m.Cpu.Cr2);
        ProtectionViolation v = Assert.Single(monitor.Violations);
        Assert.Equal(ProtectionViolationKind.DescriptorTable, v.Kind);
        Assert.Equal(GdtAlias + (2 * 8), v.Target);
        Assert.True(v.Blocked);
    }

    [Fact]
    public void LtrMaySetTheBusyBitAndLgdtMayNotMoveTheTable()
    {
        using var m = Setup(MmuMode.Shadow, enforce: true, out RecordingMonitor monitor);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.mov(ax, SystemMachine.Tss);
            a.ltr(ax);                                                  // sets the TSS busy bit in the GDT
            a.sub(rsp, 16);
            a.sgdt(__[rsp]);
            a.lgdt(__[rsp]);                                            // the same GDTR: allowed
            a.mov(rax, GdtAlias);
            a.mov(__qword_ptr[rsp + 2], rax);
            a.mov(r8, 1);
            a.lgdt(__[rsp]);                                            // another base: refused
            a.hlt();
        });
        m.EnterLongMode();
        VcpuStateWithoutTaskRegister(m);
        m.Cpu.SyncProtection();
        m.RunToHandler(13);

        Assert.Equal(0x8BUL, (m.Memory.Read<ulong>(SystemMachine.GdtAddress + (8 * 8)) >> 40) & 0xFF); // busy 64-bit TSS
        Assert.Equal(1UL, m.Cpu.GetRegister(8));
        Assert.Equal(SystemMachine.GdtAddress, m.Cpu.GetState().Gdt.Base);
        ProtectionViolation v = Assert.Single(monitor.Violations);
        Assert.Equal(ProtectionViolationKind.DescriptorTable, v.Kind);
        Assert.Equal(GdtAlias, v.Target);
    }

    [Fact]
    public void LogModeReportsADescriptorChangeAndLetsItHappen()
    {
        using var m = Setup(MmuMode.Shadow, enforce: false, out RecordingMonitor monitor);
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.bts(__qword_ptr[KernelCsEntry], 45);
            a.hlt();
        });
        m.EnterLongMode();
        m.Cpu.SyncProtection();
        m.RunToHalt();
        Assert.NotEqual(0UL, m.Memory.Read<ulong>(KernelCsEntry) & (1UL << 45));
        Assert.False(Assert.Single(monitor.Violations).Blocked);
    }

    [Fact]
    public void DeviceWritesIntoALockedGdtAreRefused()
    {
        using var m = Setup(MmuMode.Shadow, enforce: true, out RecordingMonitor monitor);
        m.EnterLongMode();
        m.Cpu.SyncProtection();
        Assert.False(m.Cpu.Protection!.AllowsDeviceWrite(TlsEntry, 8));
        Assert.True(m.Cpu.Protection.AllowsDeviceWrite(SystemMachine.GdtAddress + 0x1000, 8));
        Assert.Equal(ProtectionViolationKind.DeviceWrite, Assert.Single(monitor.Violations).Kind);
    }

    private static SystemMachine Setup(MmuMode mode, bool enforce, out RecordingMonitor monitor)
    {
        var m = new SystemMachine(mode);
        m.InstallHaltHandlers();
        m.MapPage(GdtAlias, SystemMachine.GdtAddress, user: false);
        monitor = new RecordingMonitor();
        var map = new ProtectionMap(monitor, enforce);
        m.Cpu.Protection = map;
        Assert.True(map.Lock([], [], RegisterPins.None, descriptorTables: true));
        return m;
    }

    // LTR needs an available TSS descriptor, and EnterLongMode loads TR without touching the GDT.
    private static void VcpuStateWithoutTaskRegister(SystemMachine m)
    {
        Machine.VcpuState state = m.Cpu.GetState();
        state.Tr = state.Tr with { Selector = 0 };
        m.Cpu.SetState(state);
    }

    private sealed class RecordingMonitor : IProtectionMonitor
    {
        public List<ProtectionViolation> Violations { get; } = new();

        public void OnUserModeEntered(IProtectionLockContext context)
        {
        }

        public void OnViolation(in ProtectionViolation violation) => Violations.Add(violation);
    }
}
