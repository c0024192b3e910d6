using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Tests.SystemState;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// VMCALL and VMMCALL on the software accelerator: the machine's hypercall handler (KVM's ABI by
/// default, as CPUID 0x40000000 promises) answers either instruction whatever the vendor.
/// </summary>
public sealed class EmulatorHypercallTests
{
    private const ulong ResultsAddress = 0x1F_0000;
    private const ulong IdtAddress = 0x9000;
    private const ulong HandlerAddress = 0x12000;
    private const ulong LocalApicBase = 0xFEE0_0000;

    [Fact]
    public void VmcallAndVmmcallAnswerKvmsAbi()
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rdi, ResultsAddress);
            a.mov(eax, 0x1234);            // unknown: -KVM_ENOSYS
            a.vmcall();
            a.mov(__qword_ptr[rdi], rax);
            a.mov(eax, 1);                 // KVM_HC_VAPIC_POLL_IRQ: 0
            a.vmmcall();
            a.mov(__qword_ptr[rdi + 8], rax);
            a.mov(eax, 0x5678);
            a.vmmcall();
            a.mov(__qword_ptr[rdi + 16], rax);
            a.mov(eax, 11);                // KVM_HC_SCHED_YIELD to APIC 0: 0
            a.xor(ebx, ebx);
            a.vmcall();
            a.mov(__qword_ptr[rdi + 24], rax);
            EmulatorTestMachine.EmitDebugExit(a, 0x11);
        });

        machine.Run();

        Assert.Equal((0x11 << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal(unchecked((ulong)-1000L), machine.Memory.Read<ulong>(ResultsAddress));
        Assert.Equal(0UL, machine.Memory.Read<ulong>(ResultsAddress + 8));
        Assert.Equal(unchecked((ulong)-1000L), machine.Memory.Read<ulong>(ResultsAddress + 16));
        Assert.Equal(0UL, machine.Memory.Read<ulong>(ResultsAddress + 24));
    }

    [Fact]
    public void SendIpiHypercallInterruptsTheNamedApic()
    {
        const byte vector = 0x50;
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rbx, LocalApicBase);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF); // software-enable the APIC
            a.mov(eax, 10);                        // KVM_HC_SEND_IPI
            a.mov(ebx, 1);                         // bitmap: APIC id min + 0
            a.xor(ecx, ecx);
            a.xor(edx, edx);                       // min = 0 (this vCPU)
            a.mov(esi, vector);                    // ICR: fixed, physical
            a.vmcall();
            a.mov(__qword_ptr[ResultsAddress], rax);
            a.sti();
            Label halt = a.CreateLabel();
            a.Label(ref halt);
            a.hlt();
            a.jmp(halt);
        });
        machine.Memory.Write(HandlerAddress, GuestCode.Assemble(64, HandlerAddress, a => EmulatorTestMachine.EmitDebugExit(a, vector)));
        WriteIdtGate(machine, vector, HandlerAddress);

        machine.Run();

        Assert.Equal((vector << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal(1UL, machine.Memory.Read<ulong>(ResultsAddress)); // one APIC received it
    }

    [Fact]
    public void KickCpuEndsAnotherVcpusHaltWithInterruptsOff()
    {
        const ulong flag = 0xA000;
        const byte startupVector = 0x20;
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(
            a =>
            {
                a.mov(rbx, LocalApicBase);
                a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);
                a.mov(__dword_ptr[rbx + 0x310], 1 << 24);                 // ICR high: APIC 1
                a.mov(__dword_ptr[rbx + 0x300], 0x4500);                  // INIT
                a.mov(__dword_ptr[rbx + 0x310], 1 << 24);
                a.mov(__dword_ptr[rbx + 0x300], 0x4600 | startupVector);  // STARTUP
                Label started = a.CreateLabel();
                a.Label(ref started);
                a.pause();
                a.cmp(__byte_ptr[flag], 0x5A);
                a.jne(started);
                a.mov(eax, 5);                                            // KVM_HC_KICK_CPU
                a.xor(ebx, ebx);                                          // flags
                a.mov(ecx, 1);                                            // APIC id 1
                a.vmcall();
                a.mov(__qword_ptr[ResultsAddress], rax);
                Label woken = a.CreateLabel();
                a.Label(ref woken);
                a.pause();
                a.cmp(__byte_ptr[flag], 0x77);
                a.jne(woken);
                EmulatorTestMachine.EmitDebugExit(a, 0x42);
            },
            vcpuCount: 2);

        // The AP: flag 0x5A, then HLT with interrupts off; only a PV unhalt gets it to flag 0x77.
        machine.Memory.Write((ulong)startupVector << 12, GuestCode.Assemble(16, (ulong)startupVector << 12, a =>
        {
            a.xor(ax, ax);
            a.mov(ds, ax);
            a.cli();
            a.mov(__byte_ptr[flag], 0x5A);
            a.hlt();
            a.mov(__byte_ptr[flag], 0x77);
            Label park = a.CreateLabel();
            a.Label(ref park);
            a.hlt();
            a.jmp(park);
        }));

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal((0x42 << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal(0UL, machine.Memory.Read<ulong>(ResultsAddress));
    }

    [Fact]
    public void WithoutAHypercallHandlerVmcallIsInvalidOpcode()
    {
        using var m = new SystemMachine();
        m.InstallHaltHandlers();
        m.Load(SystemMachine.KernelCode, a =>
        {
            a.vmcall();
            a.hlt();
        });
        m.EnterLongMode();
        m.RunToHandler(6);
        Assert.Equal(SystemMachine.KernelCode, m.StackSlot(0));
    }

    private static void WriteIdtGate(EmulatorTestMachine machine, byte vector, ulong handler)
    {
        ulong gate = IdtAddress + (vector * 16UL);
        machine.Memory.Write(gate, (ushort)handler);
        machine.Memory.Write(gate + 2, LongModeTestGuest.CodeSelector);
        machine.Memory.Write(gate + 4, (ushort)0x8E00);
        machine.Memory.Write(gate + 6, (ushort)(handler >> 16));
        machine.Memory.Write(gate + 8, (uint)(handler >> 32));
        VcpuState state = machine.Vcpus[0].GetState();
        state.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
        machine.Vcpus[0].SetState(state);
    }
}
