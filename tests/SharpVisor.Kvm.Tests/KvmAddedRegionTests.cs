using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// A memory region added after the VM exists (a Xen grant frame the guest places in the platform
/// device's BAR) gets a KVM slot of its own, so the guest reaches it as memory, not as MMIO.
/// </summary>
public class KvmAddedRegionTests
{
    private const ulong AddedAddress = 0xE000_0000; // in the MMIO hole, where the platform BAR sits

    [KvmFact]
    public void ARegionAddedAfterTheVmExistsIsGuestMemory()
    {
        using KvmTestMachine machine = KvmTestMachine.LongMode(a =>
        {
            a.mov(rbx, AddedAddress);
            a.mov(eax, __dword_ptr[rbx]);
            a.mov(dx, KvmTestMachine.OutputPort);
            a.@out(dx, eax);
            a.mov(__dword_ptr[rbx + 4], 0x600D_F00D);
            KvmTestMachine.EmitDebugExit(a, 0);
        });
        MemoryRegion added = machine.Memory.AddRegion(AddedAddress, 4096, name: "xen-grant-frame", countAsRam: false);
        machine.Memory.Write(AddedAddress, 0x1234_5678u);

        VirtualMachineRunner runner = machine.Run();

        Assert.True(runner.FailureExit is null, runner.FailureExit?.Format());
        Assert.Equal([0x1234_5678UL], machine.Output.Values);
        Assert.Equal(0x600D_F00Du, machine.Memory.Read<uint>(AddedAddress + 4));
        Assert.Equal(0, machine.Vcpus[0].Exits["mmio"]);
        Assert.False(added.IsRam);
    }
}
