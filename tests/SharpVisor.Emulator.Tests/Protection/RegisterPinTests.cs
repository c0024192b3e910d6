using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Machine.Protection;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Protection;

/// <summary>
/// The CPU side of kernel protection (docs/security.md): pinned CR0/CR4 bits and MSRs after lock
/// (#GP and a report with the guest RIP; log mode reports and lets it happen), and the CPL 3
/// entries that let the monitor lock.
/// </summary>
public sealed class RegisterPinTests
{
    private const uint MsrLstar = 0xC000_0082;

    [Fact]
    public void ClearingAPinnedCr0WpRaisesGpAndIsReportedWithItsRip()
    {
        using var cpu = Setup(enforce: true, out RecordingMonitor monitor);
        byte[] code = cpu.Load(64, a =>
        {
            a.mov(rax, cr0);
            a.btr(rax, 16);
            a.mov(cr0, rax);
            a.hlt();
        });
        CpuRunResult result = cpu.Cpu.Run(100);
        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)ExceptionVector.GeneralProtection, result.Exception!.Vector);
        Assert.NotEqual(0UL, cpu.Cpu.GetState().Cr0 & VcpuState.Cr0WriteProtect);
        ProtectionViolation v = Assert.Single(monitor.Violations);
        Assert.Equal(ProtectionViolationKind.ControlRegister, v.Kind);
        Assert.Equal(0UL, v.Target);
        Assert.Equal(TestCpu.CodeAddress + (ulong)code.Length - 4, v.Rip); // MOV CR0, RAX (3 bytes) before HLT
        Assert.True(v.Blocked);
    }

    [Fact]
    public void RewritingAPinnedLstarRaisesGpSameValuePasses()
    {
        using var cpu = Setup(enforce: true, out RecordingMonitor monitor);
        cpu.Load(64, a =>
        {
            a.mov(ecx, MsrLstar);
            a.mov(eax, 0x1000);      // the pinned value: allowed (Linux rewrites it on resume)
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(eax, 0x6666);
            a.wrmsr();
            a.hlt();
        });
        CpuRunResult result = cpu.Cpu.Run(100);
        Assert.Equal((byte)ExceptionVector.GeneralProtection, result.Exception!.Vector);
        Assert.True(cpu.Cpu.TryReadMsr(MsrLstar, out ulong lstar));
        Assert.Equal(0x1000UL, lstar);
        ProtectionViolation v = Assert.Single(monitor.Violations);
        Assert.Equal(ProtectionViolationKind.ModelSpecificRegister, v.Kind);
        Assert.Equal(MsrLstar, v.Target);
        Assert.Equal(0x6666UL, v.Value);
    }

    [Fact]
    public void LogModeReportsAndLetsTheWriteHappen()
    {
        using var cpu = Setup(enforce: false, out RecordingMonitor monitor);
        cpu.Load(64, a =>
        {
            a.mov(rax, cr0);
            a.btr(rax, 16);
            a.mov(cr0, rax);
            a.hlt();
        });
        cpu.RunToHalt();
        Assert.Equal(0UL, cpu.Cpu.GetState().Cr0 & VcpuState.Cr0WriteProtect);
        Assert.False(Assert.Single(monitor.Violations).Blocked);
    }

    [Fact]
    public void EnteringUserModeBeforeTheLockIsNoticedOnce()
    {
        using var cpu = new TestCpu();
        var map = new ProtectionMap(new RecordingMonitor(), enforce: true);
        cpu.Cpu.Protection = map;
        cpu.EnterLongMode(cpl: 3);
        Assert.True(cpu.Cpu.TakeUserModeEntry());
        Assert.False(cpu.Cpu.TakeUserModeEntry());
        Lock(map);
        cpu.EnterLongMode(cpl: 3);
        Assert.False(cpu.Cpu.TakeUserModeEntry()); // locked: nothing more to decide
    }

    private static TestCpu Setup(bool enforce, out RecordingMonitor monitor)
    {
        var cpu = new TestCpu();
        monitor = new RecordingMonitor();
        var map = new ProtectionMap(monitor, enforce);
        cpu.Cpu.Protection = map;
        cpu.EnterLongMode();
        VcpuState state = cpu.Cpu.GetState();
        state.Cr0 |= VcpuState.Cr0WriteProtect;
        cpu.Cpu.SetState(state);
        Assert.True(cpu.Cpu.TryWriteMsr(MsrLstar, 0x1000));
        Lock(map);
        cpu.Cpu.SyncProtection();
        return cpu;
    }

    private static void Lock(ProtectionMap map) => Assert.True(map.Lock([], [], new RegisterPins
    {
        Cr0Bits = VcpuState.Cr0WriteProtect,
        Lstar = 0x1000,
        EferBits = VcpuState.EferNoExecute,
    }));

    private sealed class RecordingMonitor : IProtectionMonitor
    {
        public List<ProtectionViolation> Violations { get; } = new();

        public void OnUserModeEntered(IProtectionLockContext context)
        {
        }

        public void OnViolation(in ProtectionViolation violation) => Violations.Add(violation);
    }
}
