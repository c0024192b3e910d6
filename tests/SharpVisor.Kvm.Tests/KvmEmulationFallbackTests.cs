using Iced.Intel;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// Instructions KVM's own emulator gives up on (PVM: XGETBV, INT3 — "KVM internal error,
/// suberror 1") run in SharpVisor's emulator against the vCPU's state, and the guest goes on.
/// On hardware-backed KVM the CPU runs them itself and the fallback is never needed; the guest's
/// results must be the same either way.
/// </summary>
public class KvmEmulationFallbackTests
{
    private const ulong IdtAddress = 0x9000;
    private const ulong BreakpointHandlerAddress = 0x12000;
    private const ulong Cr4OsXsave = 1UL << 18;
    private const uint BreakpointMarker = 0xB3;

    [KvmFact]
    public void XgetbvXsetbvAndInt3RunAndTheGuestContinues()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            // XSAVE enabled (CR4.OSXSAVE): XGETBV reads XCR0 (x87 only after reset), XSETBV adds SSE.
            a.mov(rax, cr4);
            a.or(rax, (int)Cr4OsXsave);
            a.mov(cr4, rax);
            a.xor(ecx, ecx);
            a.xgetbv();
            a.mov(esi, edx); // the output port goes through DX
            EmitOut(a, eax);
            EmitOut(a, esi);
            a.xor(ecx, ecx);
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.xsetbv();
            a.xor(ecx, ecx);
            a.xgetbv();
            EmitOut(a, eax);

            // INT3 traps through IDT vector 3; the handler reports the RIP it was given and returns.
            a.int3();
            Label after = a.CreateLabel();
            a.Label(ref after);
            a.lea(rax, __[after]);
            EmitOut(a, eax);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Memory.Write(BreakpointHandlerAddress, GuestCode.Assemble(64, BreakpointHandlerAddress, a =>
        {
            a.mov(eax, BreakpointMarker);
            EmitOut(a, eax);
            a.mov(rax, __qword_ptr[rsp]); // the pushed RIP
            EmitOut(a, eax);
            a.mov(rax, __qword_ptr[rsp + 8]); // the pushed CS
            EmitOut(a, eax);
            a.iretq();
        }));
        WriteInterruptGate(machine, 3, BreakpointHandlerAddress);
        KvmVcpu vcpu = machine.Vcpus[0];
        VcpuState state = vcpu.GetState();
        state.Idt = new DescriptorTable(IdtAddress, 256 * 16 - 1);
        vcpu.SetState(state);
        machine.Vm.InstructionEmulator = new X86InstructionEmulator(machine.Memory, machine.Vm.PortIo, machine.Vm.Mmio);

        VirtualMachineRunner runner = machine.Run();

        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format());
        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
        ulong[] values = machine.Output.Values;
        Assert.Equal(7, values.Length);
        Assert.Equal(1UL, values[0]); // XCR0 after reset: x87
        Assert.Equal(0UL, values[1]);
        Assert.Equal(3UL, values[2]); // x87 | SSE, as XSETBV set it
        Assert.Equal(BreakpointMarker, values[3]);
        Assert.Equal(values[6], values[4]); // INT3 is a trap: the handler sees the next instruction's RIP
        Assert.Equal(LongModeTestGuest.CodeSelector, values[5]);
        Assert.Equal(3UL, vcpu.GetXcr0());

        if (KvmHost.Probe().IsPvm)
        {
            // PVM cannot run these itself: each went through SharpVisor's emulator, counted by mnemonic.
            Assert.True(vcpu.Exits["emulated-xgetbv"] == 2, Counters(vcpu));
            Assert.True(vcpu.Exits["emulated-int3"] == 1, Counters(vcpu));
            Assert.True(vcpu.Exits["internal-error"] == 0, Counters(vcpu));
        }
    }

    /// <summary>The baseline the fallback changes: PVM's KVM stops on XGETBV (hardware runs it).</summary>
    [PvmFact]
    public void WithoutAFallbackAnInstructionKvmCannotEmulateStopsTheVcpu()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(rax, cr4);
            a.or(rax, (int)Cr4OsXsave);
            a.mov(cr4, rax);
            a.xor(ecx, ecx);
            a.xgetbv();
            KvmTestMachine.EmitDebugExit(a, 0);
        });

        VirtualMachineRunner runner = machine.Run();

        VcpuExit exit = Assert.IsType<VcpuExit>(runner.FailureExit);
        Assert.Equal(VcpuExitReason.InternalError, exit.Reason);
        Assert.Contains("instruction emulation failed", exit.Detail);
    }

    private static string Counters(KvmVcpu vcpu) => string.Join(", ", vcpu.Exits.Snapshot().Select(p => $"{p.Key} {p.Value}"));

    private static void EmitOut(Assembler a, AssemblerRegister32 register)
    {
        if (register != eax)
        {
            a.mov(eax, register);
        }

        a.mov(dx, KvmTestMachine.OutputPort);
        a.@out(dx, eax);
    }

    /// <summary>A 64-bit interrupt gate: present, DPL 0, type 0xE, in the long-mode code segment.</summary>
    private static void WriteInterruptGate(KvmTestMachine machine, byte vector, ulong handler)
    {
        ulong gate = IdtAddress + (vector * 16UL);
        machine.Memory.Write(gate, (ushort)handler);
        machine.Memory.Write(gate + 2, LongModeTestGuest.CodeSelector);
        machine.Memory.Write(gate + 4, (byte)0);
        machine.Memory.Write(gate + 5, (byte)0x8E);
        machine.Memory.Write(gate + 6, (ushort)(handler >> 16));
        machine.Memory.Write(gate + 8, (uint)(handler >> 32));
        machine.Memory.Write(gate + 12, 0u);
    }
}
