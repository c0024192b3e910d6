using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// A region added to guest memory after the machine was built (a Xen grant frame the guest maps
/// outside its RAM) is memory to the guest under both MMUs: the nested MMU's second-level table,
/// built from the regions at VM creation, learns about it (docs/xen.md, "Status").
/// </summary>
public sealed class RuntimeRegionTests
{
    private const ulong Added = 0x80_0000;   // past the test machine's 2 MiB of RAM, below the MMIO hole

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void ARegionAddedAfterTheMachineWasBuiltIsReadAndWrittenAsMemory(MmuMode mode)
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rbx, Added);
            a.mov(__byte_ptr[rbx + 1], 0x55);
            a.mov(al, __byte_ptr[rbx]);
            a.@out((byte)EmulatorTestMachine.DebugExitPort, al);
            Label self = a.CreateLabel();
            a.Label(ref self);
            a.jmp(self);
        }, mmuMode: mode);
        machine.Memory.AddRegion(Added, 4096, name: "runtime-region", countAsRam: false);
        machine.Memory.Write<byte>(Added, 0x2A);

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal((0x2A << 1) | 1, machine.Vm.Control.ExitStatus);   // not 0xFF: the read was not MMIO
        Assert.Equal(0x55, machine.Memory.Read<byte>(Added + 1));
    }

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void AnotherFilesPageAtAMapTargetIsTheGuestsMemoryUnderBothMmus(MmuMode mode)
    {
        // A Xen grant map into unpopulated address space: a map-target page added while the machine
        // exists, another domain's page mapped over it; the guest reads it and its write reaches that page.
        using GuestMemory granter = GuestMemory.CreateRam(2 << 20);
        granter.Write<byte>(0x3000, 0x2A);
        Assert.True(granter.TryGetPageFile(0x3000, out int memfd, out long offset));
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(rbx, Added);
            a.mov(__byte_ptr[rbx + 1], 0x55);
            a.mov(al, __byte_ptr[rbx]);
            a.@out((byte)EmulatorTestMachine.DebugExitPort, al);
            Label self = a.CreateLabel();
            a.Label(ref self);
            a.jmp(self);
        }, mmuMode: mode);
        machine.Memory.AddMapTargetPage(Added);
        Assert.True(machine.Memory.TryMapForeignPage(Added, memfd, offset, readOnly: false));

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal((0x2A << 1) | 1, machine.Vm.Control.ExitStatus);
        Assert.Equal(0x55, granter.Read<byte>(0x3001));
        Assert.True(machine.Memory.TryRestoreOwnPage(Added));
        Assert.Equal(0, machine.Memory.Read<byte>(Added + 1));
    }

    [Fact]
    public void TheSecondLevelTableMapsARegionOnlyUntilItIsDisposed()
    {
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        var table = SecondLevelTable.Build(memory);
        MemoryRegion added = memory.AddRegion(Added, 4096, readOnly: true, name: "runtime-rom", countAsRam: false);

        Assert.Equal(SecondLevelRights.None, table.Translate(Added, out _));
        Assert.True(table.MapRegion(added));
        Assert.Equal(SecondLevelRights.Read | SecondLevelRights.Execute, table.Translate(Added + 8, out nint host));
        Assert.Equal(added.HostAddress + 8, host);

        table.Dispose();
        Assert.False(table.MapRegion(added));
    }
}
