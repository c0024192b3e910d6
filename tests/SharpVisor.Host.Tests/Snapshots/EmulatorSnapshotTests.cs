using System.Buffers.Binary;
using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.Machine.Snapshots;
using SharpVisor.TestSupport;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// Save and restore on the emulator with a tiny Multiboot guest that runs a long pseudo-random
/// recurrence (a linear congruential generator) and stores its state in RAM: a machine restored
/// from a snapshot taken mid-way must end with exactly the value the recurrence gives, as if it
/// had never stopped. And the bad inputs: a flipped byte, another format version.
/// </summary>
public sealed class EmulatorSnapshotTests
{
    private const uint LoadAddress = 0x1_0000;
    private const uint EntryOffset = 0x100;
    internal const uint StateAddress = 0x8_0000;
    private const int Iterations = 60_000_000;
    internal const byte Done = 0x42;

    /// <summary>Also with a second vCPU (parked in wait-for-SIPI: its state goes through too) and nested paging.</summary>
    [Theory]
    [InlineData(MmuMode.Shadow, 1)]
    [InlineData(MmuMode.Nested, 2)]
    public void ARestoredMachineContinuesWhereTheSnapshotWasTaken(MmuMode mmu, int vcpus)
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, BuildKernel());
        string state = directory.File("vm.state");
        string memory = directory.File("vm.mem");

        uint savedIteration;
        using (VirtualMachineMonitor source = VirtualMachineMonitor.Create(Configuration(kernel) with { Mmu = mmu.ToMmuKind(), VcpuCount = vcpus }))
        {
            var run = new Thread(() => source.Run(TimeSpan.FromMinutes(2)));
            run.Start();
            WaitUntil(() => source.Machine.Memory.Read<uint>(StateAddress + 4) > 1000, TimeSpan.FromSeconds(60), "the guest never started counting");
            Assert.True(source.Pause(TimeSpan.FromSeconds(10)));
            savedIteration = source.Machine.Memory.Read<uint>(StateAddress + 4);
            SnapshotSummary summary = source.SaveSnapshot(state, memory);
            Assert.True(summary.MemoryBytesWritten > 0 && summary.MemoryBytesWritten < 16L << 20, $"{summary.MemoryBytesWritten} bytes of memory written");
            source.Stop();
            source.Resume();
            run.Join();
        }

        Assert.InRange(savedIteration, 1001u, (uint)Iterations - 1);
        Assert.True(new FileInfo(memory).Length == 16L << 20, "the memory file spans the guest's RAM");

        using VirtualMachineMonitor restored = VirtualMachineMonitor.Restore(state, memory, c => c with { SerialOutput = new CapturedOutput() });
        Assert.Equal(savedIteration, restored.Machine.Memory.Read<uint>(StateAddress + 4));
        Assert.Equal(vcpus, restored.Vcpus.Count);
        Assert.Equal(mmu, ((SharpVisor.Emulator.Accelerator.EmulatorVirtualMachine)restored.Machine).MmuMode);
        RunOutcome outcome = restored.Run(TimeSpan.FromMinutes(2));

        Assert.Equal((MachineStopReason.DebugExit, (Done << 1) | 1), (outcome.Reason, outcome.ExitStatus));
        Assert.Equal((uint)Iterations, restored.Machine.Memory.Read<uint>(StateAddress + 4));
        Assert.Equal(ExpectedValue(), restored.Machine.Memory.Read<uint>(StateAddress));
    }

    [Fact]
    public void ACorruptOrForeignSnapshotIsRefusedWithOneLine()
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, BuildKernel());
        string state = directory.File("vm.state");
        string memory = directory.File("vm.mem");
        using (VirtualMachineMonitor source = VirtualMachineMonitor.Create(Configuration(kernel)))
        {
            source.Pause(TimeSpan.FromMilliseconds(10)); // never run: nothing to park, but paused
            source.SaveSnapshot(state, memory);
        }

        byte[] good = File.ReadAllBytes(state);
        for (int offset = 40; offset < good.Length; offset += good.Length / 7)
        {
            byte[] bad = (byte[])good.Clone();
            bad[offset] ^= 0x10;
            File.WriteAllBytes(state, bad);
            var error = Assert.Throws<SnapshotException>(() => VirtualMachineMonitor.Restore(state, memory));
            Assert.DoesNotContain('\n', error.Message);
            Assert.Matches("corrupt|truncated", error.Message);
        }

        byte[] version = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(version.AsSpan(8), 99);
        File.WriteAllBytes(state, version);
        Assert.Contains("version 99 is not supported", Assert.Throws<SnapshotException>(() => VirtualMachineMonitor.Restore(state, memory)).Message);

        File.WriteAllBytes(state, good);
        File.WriteAllBytes(memory, new byte[4096]);
        Assert.Contains("bytes of RAM", Assert.Throws<SnapshotException>(() => VirtualMachineMonitor.Restore(state, memory)).Message);
    }

    [Fact]
    public void PausingTheMachineFreezesItsVirtioDevicesAndResumingThawsThem()
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, BuildKernel());
        using VirtualMachineMonitor vmm = VirtualMachineMonitor.Create(Configuration(kernel) with { EntropyDevice = true });
        Assert.NotEmpty(vmm.Devices.Devices);
        Assert.DoesNotContain(vmm.Devices.Devices, d => d.Device.IsFrozen);

        // A snapshot or a migration's last copy must not race a device writing guest memory or a TAP.
        vmm.Pause(TimeSpan.FromMilliseconds(10));
        Assert.All(vmm.Devices.Devices, d => Assert.True(d.Device.IsFrozen, d.Name));
        vmm.Resume();
        Assert.DoesNotContain(vmm.Devices.Devices, d => d.Device.IsFrozen);
    }

    [Fact]
    public void ADiffSnapshotHoldsOnlyThePagesThatChanged()
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, BuildKernel());
        using VirtualMachineMonitor source = VirtualMachineMonitor.Create(Configuration(kernel));
        var run = new Thread(() => source.Run(TimeSpan.FromMinutes(2)));
            run.Start();
        WaitUntil(() => source.Machine.Memory.Read<uint>(StateAddress + 4) > 1000, TimeSpan.FromSeconds(60), "the guest never started counting");
        Assert.True(source.Pause(TimeSpan.FromSeconds(10)));
        source.SaveSnapshot(directory.File("base.state"), directory.File("base.mem"));
        source.Resume();
        uint resumedAt = source.Machine.Memory.Read<uint>(StateAddress + 4);
        WaitUntil(() => source.Machine.Memory.Read<uint>(StateAddress + 4) > resumedAt + 1000, TimeSpan.FromSeconds(60), "the guest did not run on");
        Assert.True(source.Pause(TimeSpan.FromSeconds(10)));
        uint savedIteration = source.Machine.Memory.Read<uint>(StateAddress + 4);
        SnapshotSummary diff = source.SaveSnapshot(directory.File("diff.state"), directory.File("diff.mem"), diff: true);
        source.Stop();
        source.Resume();
        run.Join();

        // The guest writes one page (its state) and the stack it does not use: a handful at most.
        Assert.InRange(diff.DiffPages, 1, 8);
        Assert.Throws<SnapshotException>(() => VirtualMachineMonitor.Restore(directory.File("diff.state"), directory.File("diff.mem")));
        using VirtualMachineMonitor restored = VirtualMachineMonitor.Restore(directory.File("diff.state"), directory.File("diff.mem"), c => c with { SerialOutput = new CapturedOutput() }, baseMemoryPath: directory.File("base.mem"));
        Assert.Equal(savedIteration, restored.Machine.Memory.Read<uint>(StateAddress + 4));
        RunOutcome outcome = restored.Run(TimeSpan.FromMinutes(2));
        Assert.Equal((MachineStopReason.DebugExit, (Done << 1) | 1), (outcome.Reason, outcome.ExitStatus));
        Assert.Equal(ExpectedValue(), restored.Machine.Memory.Read<uint>(StateAddress));
    }

    private static void WaitUntil(Func<bool> condition, TimeSpan timeout, string what)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            Thread.Sleep(20);
        }
    }

    private static MachineConfiguration Configuration(string kernel) => new()
    {
        KernelPath = kernel,
        MemorySize = 16UL << 20,
        Accelerator = AcceleratorKind.Emulator,
        Mmu = MmuKind.Shadow,
        SerialOutput = new CapturedOutput(),
        EntropyDevice = false,
    };

    internal static uint ExpectedValue(int iterations = Iterations)
    {
        uint x = 1;
        for (int i = 0; i < iterations; i++)
        {
            x = unchecked((x * 1_103_515_245) + 12_345);
        }

        return x;
    }

    /// <summary>A Multiboot image whose 32-bit entry runs the recurrence, keeping x and i in RAM (reloaded each round).</summary>
    internal static byte[] BuildKernel(int iterations = Iterations)
    {
        uint entryAddress = LoadAddress + EntryOffset;
        byte[] image = new byte[0x1000];
        const uint magic = 0x1BAD_B002;
        const uint flags = 1u << 16;
        Span<byte> header = image.AsSpan(0x40);
        BinaryPrimitives.WriteUInt32LittleEndian(header, magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], unchecked(0u - magic - flags));
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], LoadAddress + 0x40);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], LoadAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[28..], entryAddress);

        byte[] entry = GuestCode.Assemble(32, entryAddress, a =>
        {
            a.mov(__dword_ptr[StateAddress], 1);
            a.mov(__dword_ptr[StateAddress + 4], 0);
            Label loop = a.CreateLabel();
            a.Label(ref loop);
            a.mov(eax, __dword_ptr[StateAddress]);
            a.imul(eax, eax, 1_103_515_245);
            a.add(eax, 12_345);
            a.mov(__dword_ptr[StateAddress], eax);
            a.mov(ecx, __dword_ptr[StateAddress + 4]);
            a.inc(ecx);
            a.mov(__dword_ptr[StateAddress + 4], ecx);
            a.cmp(ecx, iterations);
            a.jne(loop);
            a.mov(al, Done);
            a.@out(0xF4, al);
        });
        entry.CopyTo(image, (int)EntryOffset);
        return image;
    }
}
