using System.Text;
using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>Port I/O and MMIO exits dispatched to the machine's buses.</summary>
public class KvmVcpuIoTests
{
    private const ushort TestPort = 0x30;
    private const ulong MmioBase = 0xD000_0000;
    private const ulong DataAddress = 0x20000;

    [KvmFact]
    public void SerialStyleOutputArrivesInOrder()
    {
        const string message = "Hello from a KVM guest\n";
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            KvmTestMachine.EmitOutputString(a, message);
            KvmTestMachine.EmitDebugExit(a, 0);
        });

        machine.Run();

        Assert.Equal(message, machine.Output.Text);
        Assert.Equal(message.Length + 1, machine.Vcpus[0].Exits["io"]);
    }

    [KvmFact]
    public void DebugExitEndsTheMachineWithItsStatus()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a => KvmTestMachine.EmitDebugExit(a, 0x21));

        VirtualMachineRunner runner = machine.Run();

        Assert.Equal(MachineStopReason.DebugExit, machine.Vm.Control.StopReason);
        Assert.Equal((0x21 << 1) | 1, machine.Vm.Control.ExitStatus);
        VcpuExit exit = Assert.Single(runner.Exits);
        Assert.Equal(VcpuExitReason.Stopped, exit.Reason);
        Assert.Null(runner.FailureExit);
    }

    [KvmFact]
    public void PortReadsOfEachSizeReachTheDeviceAndTheGuestUsesTheValue()
    {
        var device = new RecordingPortDevice((offset, size) => size switch
        {
            1 => 0x41,
            2 => 0x1234,
            _ => 0xDEAD_BEEF,
        });
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(dx, TestPort);
            a.@in(al, dx);
            a.add(al, 1);
            a.@out(dx, al);
            a.@in(ax, dx);
            a.xor(ax, 0xFFFF);
            a.@out(dx, ax);
            a.@in(eax, dx);
            a.not(eax);
            a.@out(dx, eax);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Vm.PortIo.Register(TestPort, 4, device, "round-trip");

        machine.Run();

        Assert.Equal([0x42UL, 0x1234UL ^ 0xFFFF, ~0xDEAD_BEEFu], device.Values);
        Assert.Equal([1, 2, 4], device.Writes.Select(w => w.Data.Length));
    }

    [KvmFact]
    public void UnassignedPortsReadAllOnes()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(dx, 0x3F0);
            a.@in(eax, dx);
            a.mov(dx, KvmTestMachine.OutputPort);
            a.@out(dx, eax);
            KvmTestMachine.EmitDebugExit(a, 0);
        });

        machine.Run();

        Assert.Equal([0xFFFF_FFFFUL], machine.Output.Values);
    }

    [KvmFact]
    public void RepOutsbDeliversTheWholeString()
    {
        const string message = "string I/O through rep outsb";
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(rsi, DataAddress);
            a.mov(ecx, message.Length);
            a.mov(dx, KvmTestMachine.OutputPort);
            a.cld();
            a.rep.outsb();
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Memory.Write(DataAddress, Encoding.ASCII.GetBytes(message));

        machine.Run();

        Assert.Equal(message, machine.Output.Text);
    }

    [KvmFact]
    public void RepInswFillsGuestMemoryFromTheDevice()
    {
        ushort next = 0x0100;
        var device = new RecordingPortDevice((_, size) => next++);
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(rdi, DataAddress);
            a.mov(ecx, 8);
            a.mov(dx, TestPort);
            a.cld();
            a.rep.insw();
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Vm.PortIo.Register(TestPort, 2, device, "counter");

        machine.Run();

        ushort[] words = Enumerable.Range(0, 8).Select(i => machine.Memory.Read<ushort>(DataAddress + (ulong)(i * 2))).ToArray();
        Assert.Equal(Enumerable.Range(0x100, 8).Select(i => (ushort)i), words);
    }

    [KvmFact]
    public void MmioReadsAndWritesInTheHoleReachTheDevice()
    {
        var device = new RecordingMmioDevice((offset, size) => offset switch
        {
            0x10 => 0xCAFE_BABE,
            0x40 => 0x5A,
            _ => 0,
        });
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(rbx, MmioBase);
            a.mov(eax, __dword_ptr[rbx + 0x10]);
            a.add(eax, 1);
            a.mov(__dword_ptr[rbx + 0x20], eax);
            a.mov(rax, 0x1122_3344_5566_7788);
            a.mov(__qword_ptr[rbx + 0x30], rax);
            a.mov(al, __byte_ptr[rbx + 0x40]);
            a.mov(dx, KvmTestMachine.OutputPort);
            a.@out(dx, al);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Vm.Mmio.Register(MmioBase, 0x1000, device, "test-mmio");

        machine.Run();

        Assert.Equal([(0x10UL, 4), (0x40UL, 1)], device.Reads);
        (ulong Offset, byte[] Data)[] writes = device.Writes.ToArray();
        Assert.Equal(2, writes.Length);
        Assert.Equal(0x20UL, writes[0].Offset);
        Assert.Equal(0xCAFE_BABFUL, RecordingPortDevice.ToValue(writes[0].Data));
        Assert.Equal(0x30UL, writes[1].Offset);
        Assert.Equal(0x1122_3344_5566_7788UL, RecordingPortDevice.ToValue(writes[1].Data));
        Assert.Equal([0x5AUL], machine.Output.Values);
        Assert.Equal(4, machine.Vcpus[0].Exits["mmio"]);
    }

    [KvmFact]
    public void ReadOnlySlotIsReadDirectlyAndWritesBecomeMmioExits()
    {
        const ulong romAddress = KvmTestMachine.RamSize;
        var romWrites = new RecordingMmioDevice();
        using KvmTestMachine machine = KvmTestMachine.LongMode(
            a =>
            {
                a.mov(rbx, romAddress);
                a.mov(dx, KvmTestMachine.OutputPort);
                a.mov(eax, __dword_ptr[rbx]);
                a.@out(dx, eax);
                a.mov(__dword_ptr[rbx], 0x55AA_55AA);
                a.mov(eax, __dword_ptr[rbx]);
                a.@out(dx, eax);
                KvmTestMachine.EmitDebugExit(a, 0);
            },
            addRegions: memory => memory.AddRegion(romAddress, 0x1000, readOnly: true, name: "test-rom"));
        machine.Memory.Write<uint>(romAddress, 0x1122_3344);
        machine.Vm.Mmio.Register(romAddress, 0x1000, romWrites, "rom-write-catcher");

        machine.Run();

        Assert.Equal([0x1122_3344UL, 0x1122_3344UL], machine.Output.Values);
        (ulong offset, byte[] data) = Assert.Single(romWrites.Writes);
        Assert.Equal(0UL, offset);
        Assert.Equal(0x55AA_55AAUL, RecordingPortDevice.ToValue(data));
        Assert.Empty(romWrites.Reads);
        Assert.Equal(0x1122_3344u, machine.Memory.Read<uint>(romAddress));
    }

    [KvmFact]
    public void ThrowingDeviceEndsTheVcpuWithAnInternalErrorNamingTheDevice()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(al, 1);
            a.@out(0x50, al);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Vm.PortIo.Register(0x50, 1, new ThrowingPortDevice(), "exploding-device");

        VirtualMachineRunner runner = machine.Run();

        VcpuExit exit = Assert.IsType<VcpuExit>(runner.FailureExit);
        Assert.Equal(VcpuExitReason.InternalError, exit.Reason);
        Assert.Contains("exploding-device", exit.Detail);
        Assert.Contains("port 0x50", exit.Detail);
        Assert.Contains("device exploded on write", exit.Detail);
        Assert.NotNull(exit.State);
        Assert.Equal(MachineStopReason.Crashed, machine.Vm.Control.StopReason);
    }
}
