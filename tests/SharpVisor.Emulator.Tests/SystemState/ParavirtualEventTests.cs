using Iced.Intel;
using SharpVisor.Machine.Hypervisor;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>
/// An event a paravirtualizing hypervisor takes over (Xen PV bounces it to the guest's trap
/// table): the CPU resumes at the RIP the hypervisor chose and runs each instruction there once.
/// </summary>
public sealed class ParavirtualEventTests
{
    [Fact]
    public void TheHandlerAHypervisorEntersRunsItsFirstInstructionOnce()
    {
        using var m = new SystemMachine();
        var platform = new BouncingPlatform();
        m.Cpu.Platform = platform;
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.push(0x11);
            a.push(0x22);
            a.ud2();              // the hypervisor resumes right after it, as a bounce to a handler would
            a.pop(rcx);
            a.pop(rdx);
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHalt();
        Assert.Equal(1, platform.Events);
        Assert.Equal(0x22UL, m.Cpu.GetRegister(1));
        Assert.Equal(0x11UL, m.Cpu.GetRegister(2));
    }

    /// <summary>Takes #UD and continues after the two-byte UD2; no MSRs, a zero TSC, CR8 kept.</summary>
    private sealed class BouncingPlatform : ICpuPlatform
    {
        private ulong _cr8;

        public int Events { get; private set; }

        public bool TryParavirtualEvent(X86Cpu cpu, ParavirtualEvent e)
        {
            if (e.Vector != 6)
            {
                return false;
            }

            Events++;
            cpu.Rip = e.ReturnRip + 2;
            return true;
        }

        public bool TryReadMsr(X86Cpu cpu, uint index, out ulong value)
        {
            value = 0;
            return false;
        }

        public bool TryWriteMsr(X86Cpu cpu, uint index, ulong value) => false;

        public ulong ReadTsc() => 0;

        public void AdjustCpuid(X86Cpu cpu, uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx)
        {
        }

        public ulong ReadCr8(X86Cpu cpu) => _cr8;

        public void WriteCr8(X86Cpu cpu, ulong value) => _cr8 = value;
    }
}
