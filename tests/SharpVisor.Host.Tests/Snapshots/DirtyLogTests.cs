using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// The emulator's dirty log (docs/snapshot.md): a guest storing to one page while it runs
/// shows that page in every fetch, and nothing else changes once it is paused.
/// </summary>
public sealed class DirtyLogTests
{
    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void EveryFetchHoldsThePagesTheGuestStoredTo(MmuMode mmu) => Check(AcceleratorKind.Emulator, mmu, 60_000_000);

    /// <summary>KVM_MEM_LOG_DIRTY_PAGES and KVM_GET_DIRTY_LOG, merged with the DMA marks.</summary>
    [KvmFact]
    public void KvmsDirtyLogHoldsThePagesTheGuestStoredTo() => Check(AcceleratorKind.Kvm, null, 2_000_000_000);

    private static void Check(AcceleratorKind accelerator, MmuMode? mmu, int iterations)
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, EmulatorSnapshotTests.BuildKernel(iterations));
        using VirtualMachineMonitor vmm = VirtualMachineMonitor.Create(new MachineConfiguration
        {
            KernelPath = kernel,
            MemorySize = 16UL << 20,
            Accelerator = accelerator,
            Mmu = mmu?.ToMmuKind(),
            SerialOutput = new CapturedOutput(),
            EntropyDevice = false,
        });
        var machine = (IDirtyPageTracking)vmm.Machine;
        DirtyPageLog log = vmm.Machine.Memory.DirtyLog!;
        ulong statePage = EmulatorSnapshotTests.StateAddress >> 12;
        var run = new Thread(() => vmm.Run(TimeSpan.FromMinutes(2)));
        run.Start();
        try
        {
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (vmm.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4) < 1000)
            {
                Assert.True(DateTime.UtcNow < deadline, "the guest never started counting");
                Thread.Sleep(20);
            }

            // The guest stores to its state page all the time: every fetch has it again, because a
            // fetch takes write access from the TLBs and the next store marks the page anew. The
            // first fetch also holds what the boot loader wrote.
            Assert.Contains(statePage, DirtyPageLog.PagesIn(machine.FetchDirtyPages()));
            for (int round = 0; round < 5; round++)
            {
                // Wait for a store after the last fetch (the counter moving), not for a fixed time:
                // on a loaded host the vCPU thread may not run at all for tens of milliseconds.
                uint before = vmm.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4);
                DateTime storeDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (vmm.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4) == before)
                {
                    Assert.True(DateTime.UtcNow < storeDeadline, "the guest stopped counting");
                    Thread.Sleep(5);
                }

                ulong[] pages = machine.FetchDirtyPages();
                Assert.Contains(statePage, DirtyPageLog.PagesIn(pages));
                Assert.InRange(DirtyPageLog.CountPages(pages), 1, 16);
            }

            Assert.True(vmm.Pause(TimeSpan.FromSeconds(10)));
            machine.FetchDirtyPages();
            Assert.Equal(0, DirtyPageLog.CountPages(machine.FetchDirtyPages()));
            vmm.Machine.Memory.Write(0x30_0010, [7]); // a device's DMA while paused
            Assert.Equal([0x300UL], DirtyPageLog.PagesIn(machine.FetchDirtyPages()).ToArray());
            Assert.Equal(0x30_0000UL, log.AddressOf(0x300));
        }
        finally
        {
            vmm.Stop();
            vmm.Resume();
            run.Join();
        }
    }
}
