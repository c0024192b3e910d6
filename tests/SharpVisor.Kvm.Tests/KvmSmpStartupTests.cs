using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// Application-processor start-up the way an SMP kernel does it: vCPU 1 is never given a state by
/// the VMM, so KVM parks it waiting for SIPI; the BSP wakes it with INIT-SIPI-SIPI through its
/// local APIC's ICR. KVM_RUN on the woken AP returns EAGAIN, which means "run again".
/// </summary>
public class KvmSmpStartupTests
{
    private const ulong LocalApicBase = 0xFEE0_0000;
    private const int IcrLow = 0x300;
    private const int IcrHigh = 0x310;
    private const int SpuriousVector = 0xF0;

    // The AP's real-mode entry: SIPI vector 0x0A starts it at CS=0x0A00, IP=0 (0xA000).
    private const byte StartupVector = 0x0A;
    private const ulong ApEntry = (ulong)StartupVector << 12;
    private const ushort ApArrivedAddress = 0xB000;

    [KvmFact]
    public void BspStartsTheApWithInitSipiSipiAndBothReport()
    {
        using KvmTestMachine machine = KvmTestMachine.Bare(vcpuCount: 2);
        LongModeTestGuest.Load(machine.Memory, GuestCode.Assemble(64, LongModeTestGuest.CodeAddress, a =>
        {
            a.mov(rbx, LocalApicBase);
            a.mov(__dword_ptr[rbx + SpuriousVector], 0x1FF);

            // INIT (delivery mode 101, level assert), then two start-ups (110) with the vector, to APIC id 1.
            SendIpi(a, 0x4500);
            SendIpi(a, 0x4600 | StartupVector);
            SendIpi(a, 0x4600 | StartupVector);

            // Wait for the AP, then report this CPU's initial APIC id after the AP's.
            a.mov(rsi, ApArrivedAddress);
            Label wait = a.CreateLabel();
            a.Label(ref wait);
            a.pause();
            a.cmp(__dword_ptr[rsi], 1);
            a.jne(wait);
            EmitReportApicId(a);
            KvmTestMachine.EmitDebugExit(a, 0);
        }));
        machine.Memory.Write(ApEntry, GuestCode.Assemble(16, 0, a =>
        {
            // Real mode, as a CPU leaves wait-for-SIPI.
            a.xor(ax, ax);
            a.mov(ds, ax);
            EmitReportApicId(a);
            a.mov(bx, ApArrivedAddress);
            a.@lock.inc(__dword_ptr[bx]);
            a.cli();
            Label halt = a.CreateLabel();
            a.Label(ref halt);
            a.hlt();
            a.jmp(halt);
        }));
        KvmVcpu bsp = machine.Vcpus[0];
        bsp.SetState(LongModeTestGuest.Configure(bsp.GetState()));

        VirtualMachineRunner runner = machine.Run();

        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format());
        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
        Assert.Equal([1UL, 0UL], machine.Output.Values);
        Assert.Equal(1u, machine.Memory.Read<uint>(ApArrivedAddress));
    }

    private static void SendIpi(Assembler a, int command)
    {
        a.mov(__dword_ptr[rbx + IcrHigh], 1 << 24);
        a.mov(__dword_ptr[rbx + IcrLow], command);
    }

    /// <summary>Writes CPUID leaf 1's initial APIC id (EBX bits 31:24) to the output port.</summary>
    private static void EmitReportApicId(Assembler a)
    {
        a.mov(eax, 1);
        a.cpuid();
        a.shr(ebx, 24);
        a.mov(eax, ebx);
        a.mov(dx, KvmTestMachine.OutputPort);
        a.@out(dx, eax);
    }
}
