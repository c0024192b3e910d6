using System.Diagnostics;
using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>Triple faults, kicks, state, several vCPUs, CPUID.</summary>
public class KvmVcpuLifecycleTests
{
    private const ushort DonePort = 0x31;
    private const ulong CounterAddress = 0x20000;

    [KvmFact]
    public void TripleFaultEndsCleanlyWithStateAndInstructionBytes()
    {
        // A load from a non-canonical address raises #GP; with an empty IDT that becomes a double
        // fault, then a triple fault. (int3 would be simpler, but PVM's emulator cannot run it.)
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(rax, 0x8000_0000_0000_0000);
            a.mov(ebx, __dword_ptr[rax]);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        VcpuState state = machine.Vcpus[0].GetState();
        state.Idt = new DescriptorTable(0, 0);
        machine.Vcpus[0].SetState(state);

        VirtualMachineRunner runner = machine.Run();

        VcpuExit exit = Assert.IsType<VcpuExit>(runner.FailureExit);
        Assert.Equal(VcpuExitReason.Shutdown, exit.Reason);
        Assert.NotNull(exit.State);
        Assert.NotNull(exit.InstructionBytes);
        Assert.Equal(LongModeTestGuest.CodeAddress + 10, exit.State.Rip);
        byte[] expected = machine.Memory.GetSpan(exit.State.Rip, exit.InstructionBytes.Length).ToArray();
        Assert.Equal(expected, exit.InstructionBytes);
        Assert.Equal(16, exit.InstructionBytes.Length);
        Assert.Contains("Code at RIP", exit.Format());
        Assert.Equal(MachineStopReason.Crashed, machine.Vm.Control.StopReason);
        Assert.Equal(1, machine.Vcpus[0].Exits["shutdown"]);
    }

    [PvmFact]
    public void InstructionPvmCannotEmulateEndsAsAnInternalErrorWithItsDetail()
    {
        // PVM runs guest kernel code through KVM's instruction emulator, which has no int3.
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.nop();
            a.int3();
            KvmTestMachine.EmitDebugExit(a, 0);
        });

        VirtualMachineRunner runner = machine.Run();

        VcpuExit exit = Assert.IsType<VcpuExit>(runner.FailureExit);
        Assert.Equal(VcpuExitReason.InternalError, exit.Reason);
        Assert.StartsWith("KVM internal error, suberror 1 (instruction emulation failed), data [", exit.Detail);
        Assert.Equal(LongModeTestGuest.CodeAddress + 1, exit.State?.Rip);
        Assert.Equal((byte)0xCC, exit.InstructionBytes?[0]);
        Assert.Equal(1, machine.Vcpus[0].Exits["internal-error"]);
        Assert.Equal(MachineStopReason.Crashed, machine.Vm.Control.StopReason);
    }

    [KvmFact]
    public void KickStopsAGuestSpinningInAnEndlessLoop()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            Label self = a.CreateLabel();
            a.Label(ref self);
            a.jmp(self);
        });
        KvmVcpu vcpu = machine.Vcpus[0];
        VcpuExit? exit = null;
        var thread = new Thread(() => exit = vcpu.Run()) { IsBackground = true };
        thread.Start();
        Thread.Sleep(200);
        Assert.True(thread.IsAlive, "the guest should still be spinning");

        var stopwatch = Stopwatch.StartNew();
        vcpu.Kick();
        bool joined = thread.Join(TimeSpan.FromSeconds(5));

        Assert.True(joined, "Run did not return after Kick");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(1), $"Run took {stopwatch.Elapsed} to return after Kick");
        Assert.Equal(VcpuExitReason.Stopped, exit?.Reason);
        Assert.Equal(LongModeTestGuest.CodeAddress, vcpu.GetState().Rip);
    }

    [KvmFact]
    public void KickStopsAGuestHaltedWithInterruptsDisabled()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.cli();
            a.hlt();
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        KvmVcpu vcpu = machine.Vcpus[0];
        VcpuExit? exit = null;
        var thread = new Thread(() => exit = vcpu.Run()) { IsBackground = true };
        thread.Start();
        Thread.Sleep(200);
        Assert.True(thread.IsAlive, "HLT with the in-kernel irqchip should block inside KVM");

        vcpu.Kick();

        Assert.True(thread.Join(TimeSpan.FromSeconds(1)), "Run did not return after Kick");
        Assert.Equal(VcpuExitReason.Stopped, exit?.Reason);
        Assert.Empty(machine.Output.Writes);
    }

    [KvmFact]
    public void KickBeforeRunMakesTheNextRunReturnAtOnceAndIsThenConsumed()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            KvmTestMachine.EmitOutputString(a, "ran");
            KvmTestMachine.EmitDebugExit(a, 7);
        });
        KvmVcpu vcpu = machine.Vcpus[0];

        vcpu.Kick();
        VcpuExit first = vcpu.Run();

        Assert.Equal(VcpuExitReason.Stopped, first.Reason);
        Assert.Empty(machine.Output.Writes);

        // The kick is used up: the next Run executes the guest, which stops the machine itself.
        VcpuExit second = vcpu.Run();

        Assert.Equal(VcpuExitReason.Stopped, second.Reason);
        Assert.Equal("ran", machine.Output.Text);
        Assert.Equal((7 << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [KvmFact]
    public void KicksRacingRunStartAndEndNeverGetLost()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            Label self = a.CreateLabel();
            a.Label(ref self);
            a.jmp(self);
        });
        KvmVcpu vcpu = machine.Vcpus[0];
        for (int i = 0; i < 25; i++)
        {
            VcpuExit? exit = null;
            var thread = new Thread(() => exit = vcpu.Run()) { IsBackground = true };
            thread.Start();

            // Kick at varying moments: before Run starts, while it starts, while the guest runs.
            if (i % 5 != 0)
            {
                Thread.SpinWait(i * 2000);
            }

            vcpu.Kick();
            Assert.True(thread.Join(TimeSpan.FromSeconds(2)), $"round {i}: Run did not return after Kick");
            Assert.Equal(VcpuExitReason.Stopped, exit?.Reason);
        }
    }

    [KvmFact]
    public void DisposeWhileRunningStopsTheVcpuFirst()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            Label self = a.CreateLabel();
            a.Label(ref self);
            a.jmp(self);
        });
        KvmVcpu vcpu = machine.Vcpus[0];
        VcpuExit? exit = null;
        var thread = new Thread(() => exit = vcpu.Run()) { IsBackground = true };
        thread.Start();
        Thread.Sleep(100);

        vcpu.Dispose();

        Assert.True(thread.Join(TimeSpan.FromSeconds(1)));
        Assert.Equal(VcpuExitReason.Stopped, exit?.Reason);
        Assert.Throws<ObjectDisposedException>(() => vcpu.Run());
        Assert.Throws<ObjectDisposedException>(() => vcpu.GetState());
        vcpu.Kick();
    }

    [KvmFact]
    public void StateRoundTripsAndTheGuestSeesTheRegisters()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(dx, KvmTestMachine.OutputPort);
            a.mov(rax, r8);
            a.@out(dx, eax);
            a.mov(rax, r15);
            a.@out(dx, eax);
            a.shr(rax, 32);
            a.@out(dx, eax);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        KvmVcpu vcpu = machine.Vcpus[0];
        VcpuState state = vcpu.GetState();
        state.R8 = 0x0000_0000_0808_0808;
        state.R15 = 0x1515_1515_F0F0_F0F0;
        state.Rbx = 0xB;
        state.Rbp = 0x7000;
        state.Cr2 = 0x1234_5000;
        vcpu.SetState(state);

        VcpuState read = vcpu.GetState();
        Assert.Equal(state.R8, read.R8);
        Assert.Equal(state.R15, read.R15);
        Assert.Equal(state.Rbx, read.Rbx);
        Assert.Equal(state.Rbp, read.Rbp);
        Assert.Equal(state.Cr2, read.Cr2);
        Assert.Equal(state.Cr3, read.Cr3);
        Assert.Equal(state.Cs, read.Cs);
        Assert.Equal(state.Gdt, read.Gdt);
        Assert.Equal(state.Efer, read.Efer);

        machine.Run();

        Assert.Equal([0x0808_0808UL, 0xF0F0_F0F0UL, 0x1515_1515UL], machine.Output.Values);
    }

    [KvmFact]
    public void TwoVcpusRunAtTheSameTimeEachWithItsOwnApicId()
    {
        var done = new RecordingPortDevice();
        using KvmTestMachine machine = KvmTestMachine.LongMode(
            a =>
            {
                // Report (x2APIC id from leaf 0xB << 8) | initial APIC id from leaf 1 in one exit.
                a.mov(eax, 0xB);
                a.xor(ecx, ecx);
                a.cpuid();
                a.mov(esi, edx);
                a.shl(esi, 8);
                a.mov(eax, 1);
                a.cpuid();
                a.shr(ebx, 24);
                a.or(esi, ebx);
                a.mov(eax, esi);
                a.mov(dx, KvmTestMachine.OutputPort);
                a.@out(dx, eax);

                // Barrier: neither passes until both have arrived, so both must be running.
                a.mov(rbx, CounterAddress);
                a.@lock.inc(__dword_ptr[rbx]);
                Label wait = a.CreateLabel();
                a.Label(ref wait);
                a.pause();
                a.cmp(__dword_ptr[rbx], 2);
                a.jne(wait);

                a.mov(eax, esi);
                a.mov(dx, DonePort);
                a.@out(dx, eax);
                a.cli();
                Label halt = a.CreateLabel();
                a.Label(ref halt);
                a.hlt();
                a.jmp(halt);
            },
            vcpuCount: 2);
        machine.Vm.PortIo.Register(DonePort, 4, done, "done");
        done.Written += (_, _) =>
        {
            if (done.Writes.Count == 2)
            {
                machine.Vm.Control.DebugExit(0);
            }
        };

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal([0x000UL, 0x101UL], machine.Output.Values.Order());
        Assert.Equal([0x000UL, 0x101UL], done.Values.Order());
        Assert.Equal(2u, machine.Memory.Read<uint>(CounterAddress));
    }

    [KvmFact]
    public void GuestSeesTheHypervisorBitAndTheKvmSignature()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            // CPUID overwrites EDX, so the port number is loaded after it.
            a.mov(eax, 1);
            a.cpuid();
            a.mov(dx, KvmTestMachine.OutputPort);
            a.mov(eax, ecx);
            a.@out(dx, eax);
            a.mov(eax, ebx);
            a.@out(dx, eax);
            a.mov(eax, 0x4000_0000);
            a.cpuid();
            a.mov(edi, eax);
            a.mov(esi, edx);
            a.mov(dx, KvmTestMachine.OutputPort);
            a.mov(eax, ebx);
            a.@out(dx, eax);
            a.mov(eax, ecx);
            a.@out(dx, eax);
            a.mov(eax, esi);
            a.@out(dx, eax);
            a.mov(eax, edi);
            a.@out(dx, eax);
            KvmTestMachine.EmitDebugExit(a, 0);
        });

        machine.Run();

        ulong[] values = machine.Output.Values;
        Assert.Equal(6, values.Length);
        Assert.NotEqual(0UL, values[0] & KvmCpuidPolicy.HypervisorBit);
        Assert.Equal(0UL, values[1] >> 24);
        Assert.Equal(1UL, (values[1] >> 16) & 0xFF);
        byte[] signature = values[2..5].SelectMany(v => BitConverter.GetBytes((uint)v)).ToArray();
        Assert.Equal("KVMKVMKVM\0\0\0", System.Text.Encoding.ASCII.GetString(signature));
        Assert.True(values[5] >= KvmCpuidPolicy.KvmFeaturesLeaf);

        // What the guest saw is what the vCPU's CPUID table says.
        Assert.Equal(machine.Vcpus[0].Cpuid.Single(e => e.Function == 1).Ecx, (uint)values[0]);
    }
}
