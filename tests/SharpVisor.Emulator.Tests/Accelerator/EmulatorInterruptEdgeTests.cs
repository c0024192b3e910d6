using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// Interrupt injection edge cases a bare-metal test suite waits for (issue 10): an interrupt
/// pending across STI; INT n, taken at the first open window; a task-priority drop (CR8 or the
/// APIC's TPR) unmasking an interrupt at once; NMIs before maskable interrupts and blocked until
/// IRET. Each guest leaves its record in registers and exits through the debug port right after,
/// so an interrupt taken late (at the end of a time slice) fails the test.
/// </summary>
public sealed class EmulatorInterruptEdgeTests
{
    private const ulong IdtAddress = 0x9000;
    private const ulong LocalApicBase = 0xFEE0_0000;
    private const ulong Handler32 = 0x12000;
    private const ulong Handler33 = 0x12100;
    private const ulong HandlerNmi = 0x12200;
    private const ulong Handler40 = 0x12300;
    private const int IcrLow = 0x300;
    private const int SelfShorthand = 1 << 18;
    private const int NmiDelivery = 4 << 8;

    [Fact]
    public void AnInterruptPendingAcrossStiAndIntNIsTakenAtTheFirstOpenWindow()
    {
        using EmulatorTestMachine machine = Create(a =>
        {
            a.cli();
            a.mov(__dword_ptr[rbx + IcrLow], SelfShorthand | 32); // vector 32 pending, IF = 0
            a.sti();
            a.@int(33);                                         // in STI's shadow; its gate clears IF
            a.cli();                                            // IF was 1 for one boundary: after IRET
        });

        VcpuState state = RunAndGetState(machine);

        Assert.Equal(0x31UL, state.R12); // INT 33 first (3), then vector 32 (1) when its IRET opened the window
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoweringTheTaskPriorityDeliversAMaskedInterruptRightAfter(bool throughCr8)
    {
        using EmulatorTestMachine machine = Create(a =>
        {
            a.mov(eax, 15);
            a.mov(cr8, rax);                                     // TPR 0xF0 masks every vector
            a.sti();
            a.mov(__dword_ptr[rbx + IcrLow], SelfShorthand | 0x40);
            a.nop();
            a.mov(r13, r12);                                     // nothing taken yet
            if (throughCr8)
            {
                a.xor(eax, eax);
                a.mov(cr8, rax);
            }
            else
            {
                a.mov(__dword_ptr[rbx + 0x80], 0);               // the APIC's TPR register
            }

            a.mov(r14, r12);                                     // taken right after the write
            a.cli();
        });

        VcpuState state = RunAndGetState(machine);

        Assert.Equal(0UL, state.R13);
        Assert.Equal(4UL, state.R14);
    }

    [Fact]
    public void NmisComeBeforeMaskableInterruptsAndAreBlockedUntilIret()
    {
        using EmulatorTestMachine machine = Create(a =>
        {
            a.cli();
            a.mov(__dword_ptr[rbx + IcrLow], SelfShorthand | 32);          // pending, IF = 0
            a.mov(__dword_ptr[rbx + IcrLow], SelfShorthand | NmiDelivery); // taken at once
            a.sti();
            a.nop();
            a.cli();
        });

        VcpuState state = RunAndGetState(machine);

        // NMI (2), the NMI it sent itself only after its IRET (2), then vector 32 (1).
        Assert.Equal(0x221UL, state.R12);
        Assert.Equal(1UL, state.R15); // NMI handlers never nested
    }

    private static VcpuState RunAndGetState(EmulatorTestMachine machine)
    {
        VirtualMachineRunner runner = machine.Run();
        Assert.Null(runner.FailureExit);
        Assert.Equal((0x77 << 1) | 1, machine.Vm.Control.ExitStatus);
        return machine.Vcpus[0].GetState();
    }

    /// <summary>
    /// A guest with the APIC enabled (RBX = its base) and handlers that append their mark to R12
    /// (R12 = R12 * 16 + mark): vector 32 → 1 (with EOI), INT 33 → 3, NMI → 2 (the first NMI sends
    /// itself another and records its nesting depth in R15), vector 0x40 → 4 (with EOI).
    /// </summary>
    private static EmulatorTestMachine Create(Action<Assembler> body)
    {
        EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rbx, LocalApicBase);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);
            a.xor(r12, r12);
            body(a);
            EmulatorTestMachine.EmitDebugExit(a, 0x77);
        });
        try
        {
            Install(machine, 32, Handler32, a =>
            {
                Mark(a, 1);
                a.mov(__dword_ptr[rbx + 0xB0], 0);
                a.iretq();
            });
            Install(machine, 33, Handler33, a =>
            {
                Mark(a, 3);
                a.iretq();
            });
            Install(machine, 0x40, Handler40, a =>
            {
                Mark(a, 4);
                a.mov(__dword_ptr[rbx + 0xB0], 0);
                a.iretq();
            });
            Install(machine, 2, HandlerNmi, a =>
            {
                Label skip = a.CreateLabel();
                a.inc(r13);                              // depth
                a.cmp(r13, r15);
                a.jbe(skip);
                a.mov(r15, r13);                         // deepest nesting seen
                a.Label(ref skip);
                Mark(a, 2);
                Label once = a.CreateLabel();
                a.cmp(r12, 2);
                a.jne(once);
                a.mov(__dword_ptr[rbx + IcrLow], SelfShorthand | NmiDelivery); // held until IRET
                a.nop();
                a.nop();
                a.Label(ref once);
                a.dec(r13);
                a.iretq();
            });
            VcpuState state = machine.Vcpus[0].GetState();
            state.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
            machine.Vcpus[0].SetState(state);
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    private static void Mark(Assembler a, int mark)
    {
        a.shl(r12, 4);
        a.or(r12, mark);
    }

    private static void Install(EmulatorTestMachine machine, byte vector, ulong handler, Action<Assembler> code)
    {
        machine.Memory.Write(handler, GuestCode.Assemble(64, handler, code));
        ulong gate = IdtAddress + (vector * 16UL);
        machine.Memory.Write(gate, (ushort)handler);
        machine.Memory.Write(gate + 2, LongModeTestGuest.CodeSelector);
        machine.Memory.Write(gate + 4, (ushort)0x8E00);
        machine.Memory.Write(gate + 6, (ushort)(handler >> 16));
        machine.Memory.Write(gate + 8, (uint)(handler >> 32));
        machine.Memory.Write(gate + 12, 0u);
    }
}
