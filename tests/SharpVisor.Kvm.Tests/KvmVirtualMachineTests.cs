using Iced.Intel;
using SharpVisor.Interop;
using SharpVisor.Memory;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>VM construction rules and ioeventfd.</summary>
public class KvmVirtualMachineTests
{
    private const ushort EventPort = 0x300;
    private const ulong EventMmioAddress = 0xD000_1000;

    [KvmFact]
    public void SystemAreasSitInTheMmioHoleClearOfTheApics()
    {
        Assert.True(KvmVirtualMachine.IdentityMapAddress >= GuestMemory.MmioHoleStart);
        Assert.True(KvmVirtualMachine.IdentityMapAddress + 0x1000 <= KvmVirtualMachine.TssAddress);
        ulong end = KvmVirtualMachine.TssAddress + KvmVirtualMachine.TssSize;
        Assert.True(end <= GuestMemory.HighMemoryStart);
        Assert.False(KvmVirtualMachine.IdentityMapAddress < 0xFEC0_1000 && 0xFEC0_0000 < end, "overlaps the I/O APIC");
        Assert.False(KvmVirtualMachine.IdentityMapAddress < 0xFEE0_1000 && 0xFEE0_0000 < end, "overlaps the local APIC");
    }

    [KvmFact]
    public void GuestMemoryOverlappingKvmSystemAreasIsRejected()
    {
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        memory.AddRegion(KvmVirtualMachine.TssAddress, 0x1000, readOnly: true, name: "bad-rom");

        var e = Assert.Throws<ArgumentException>(() => KvmVirtualMachine.Create(memory, 1));
        Assert.Contains("identity map/TSS", e.Message);
    }

    [KvmFact]
    public void VcpuCountAndIdsAreValidated()
    {
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        Assert.Throws<ArgumentOutOfRangeException>(() => KvmVirtualMachine.Create(memory, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => KvmVirtualMachine.Create(memory, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => KvmVirtualMachine.Create(memory, 256));

        using KvmVirtualMachine vm = KvmVirtualMachine.Create(memory, 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.CreateVcpu(1));
        using var vcpu = vm.CreateVcpu(0);
        Assert.Throws<InvalidOperationException>(() => vm.CreateVcpu(0));
    }

    [KvmFact]
    public void AcceleratorBuildsAKvmMachine()
    {
        var accelerator = new KvmAccelerator();
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        using var vm = accelerator.CreateVirtualMachine(memory, 2);

        Assert.Equal("kvm", accelerator.Name);
        var kvm = Assert.IsType<KvmVirtualMachine>(vm);
        Assert.Equal(2, kvm.VcpuCount);
        Assert.Same(memory, vm.Memory);
        Assert.Contains(kvm.SupportedCpuid, e => e.Function == 0);
    }

    [KvmFact]
    public void PortIoEventFdCountsGuestWritesWithoutExits()
    {
        using var eventFd = new EventFd(nonBlocking: true);
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(dx, EventPort);
            a.mov(al, 1);
            a.@out(dx, al);
            a.@out(dx, al);
            a.@out(dx, al);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Vm.RegisterIoEventFd(eventFd, EventPort, 1, isPio: true);

        machine.Run();

        Assert.Equal(3UL, eventFd.Consume());
        Assert.Equal(1, machine.Vcpus[0].Exits["io"]);
    }

    [KvmFact]
    public void DatamatchIoEventFdFiresOnlyOnItsValueAndOtherWritesExit()
    {
        using var eventFd = new EventFd(nonBlocking: true);
        var device = new RecordingPortDevice();
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(dx, EventPort);
            a.mov(al, 0x41);
            a.@out(dx, al);
            a.mov(al, 0x42);
            a.@out(dx, al);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        machine.Vm.PortIo.Register(EventPort, 1, device, "doorbell");
        machine.Vm.RegisterIoEventFd(eventFd, EventPort, 1, isPio: true, datamatch: 0x42);

        machine.Run();

        Assert.Equal(1UL, eventFd.Consume());
        Assert.Equal([0x41UL], device.Values);
    }

    [KvmFact]
    public void MmioIoEventFdFiresAndUnregisteredWritesExitAgain()
    {
        using var eventFd = new EventFd(nonBlocking: true);
        var device = new RecordingMmioDevice();
        Action<Assembler> code = a =>
        {
            a.mov(rbx, EventMmioAddress);
            a.mov(__dword_ptr[rbx], 0x1234);
            KvmTestMachine.EmitDebugExit(a, 0);
        };

        using (KvmTestMachine machine = KvmTestMachine.LongMode(code))
        {
            machine.Vm.Mmio.Register(EventMmioAddress, 4, device, "notify");
            machine.Vm.RegisterIoEventFd(eventFd, EventMmioAddress, 4, isPio: false);
            machine.Run();
            Assert.Equal(1UL, eventFd.Consume());
            Assert.Empty(device.Writes);

            machine.Vm.UnregisterIoEventFd(eventFd, EventMmioAddress, 4, isPio: false);
        }

        using (KvmTestMachine machine = KvmTestMachine.LongMode(code))
        {
            machine.Vm.Mmio.Register(EventMmioAddress, 4, device, "notify");
            machine.Vm.RegisterIoEventFd(eventFd, EventMmioAddress, 4, isPio: false);
            machine.Vm.UnregisterIoEventFd(eventFd, EventMmioAddress, 4, isPio: false);
            machine.Run();
            Assert.Equal(0UL, eventFd.Consume());
            Assert.Single(device.Writes);
        }
    }

    [KvmFact]
    public void IoEventFdArgumentsAreValidated()
    {
        using KvmTestMachine machine = KvmTestMachine.Bare();
        using var eventFd = new EventFd();
        Assert.Throws<ArgumentOutOfRangeException>(() => machine.Vm.RegisterIoEventFd(eventFd, EventPort, 3, isPio: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => machine.Vm.RegisterIoEventFd(eventFd, 0xFFFF, 2, isPio: true));
        Assert.Throws<LinuxException>(() => machine.Vm.UnregisterIoEventFd(eventFd, EventPort, 1, isPio: true));
    }
}
