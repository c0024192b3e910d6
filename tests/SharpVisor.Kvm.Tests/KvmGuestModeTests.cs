using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>The guest modes this KVM runs: real mode, 32-bit protected mode, 64-bit long mode.</summary>
public class KvmGuestModeTests
{
    [KvmFact]
    public void RealModeGuestWritesToAPort()
    {
        using KvmTestMachine machine = KvmTestMachine.Bare();
        const ulong load = 0x1000;
        machine.Memory.Write(load, GuestCode.Assemble(16, load, a =>
        {
            KvmTestMachine.EmitOutputString(a, "real");
            KvmTestMachine.EmitDebugExit(a, 0x16);
        }));

        VcpuState state = machine.Vcpus[0].GetState();
        Assert.Equal(0UL, state.Cr0 & VcpuState.Cr0ProtectionEnable);
        state.Cs.Base = 0;
        state.Cs.Selector = 0;
        state.Rip = load;
        machine.Vcpus[0].SetState(state);

        machine.Run();

        Assert.Equal("real", machine.Output.Text);
        Assert.Equal((0x16 << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [KvmFact]
    public void ProtectedMode32GuestWritesToAPort()
    {
        using KvmTestMachine machine = KvmTestMachine.Bare();
        const ulong load = 0x10000;
        machine.Memory.Write(load, GuestCode.Assemble(32, load, a =>
        {
            // A 32-bit-only encoding: the guest really runs with a 32-bit code segment.
            a.mov(ecx, 0x1234_5678);
            a.mov(dx, KvmTestMachine.OutputPort);
            a.mov(eax, ecx);
            a.@out(dx, eax);
            KvmTestMachine.EmitDebugExit(a, 0x32);
        }));

        VcpuState state = machine.Vcpus[0].GetState();
        state.Cs = SegmentRegister.Flat(0x08, 0xB, longMode: false, defaultBig: true);
        state.Ds = state.Es = state.Ss = SegmentRegister.Flat(0x10, 0x3, longMode: false, defaultBig: true);
        state.Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0ExtensionType;
        state.Rip = load;
        state.Rsp = 0x8000;
        machine.Vcpus[0].SetState(state);

        machine.Run();

        Assert.Equal([0x1234_5678UL], machine.Output.Values);
        Assert.Equal((0x32 << 1) | 1, machine.Vm.Control.ExitStatus);
    }

    [KvmFact]
    public void LongModeGuestWritesAString()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            // A 64-bit-only operation: a 64-bit immediate, shifted down.
            a.mov(rcx, 0x4C4F_4E47_0000_0000);
            a.shr(rcx, 32);
            a.mov(dx, KvmTestMachine.OutputPort);
            a.mov(eax, ecx);
            a.@out(dx, eax);
            KvmTestMachine.EmitOutputString(a, " mode");
            KvmTestMachine.EmitDebugExit(a, 0x64);
        });

        VirtualMachineRunner runner = machine.Run();

        Assert.Equal("GNOL mode", machine.Output.Text);
        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
        Assert.All(runner.Exits, e => Assert.Equal(VcpuExitReason.Stopped, e.Reason));
        Assert.True(machine.Vcpus[0].Exits["io"] >= 6, "every out is an io exit");
    }
}
