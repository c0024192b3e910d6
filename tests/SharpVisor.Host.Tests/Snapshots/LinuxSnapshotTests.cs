using SharpVisor.Host.Vmm;
using SharpVisor.Machine.Snapshots;
using SharpVisor.TestSupport;
using static SharpVisor.Host.Tests.CountingGuest;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// Save and restore of the default guest (Debian's kernel, busybox) on the emulator, one boot:
/// the guest counts once a second on its serial console and writes each count to its own sector
/// of a virtio disk (O_DIRECT-free dd with fsync). Saved mid-count and restored into a new
/// machine, the counter goes on from where it was (no reboot) and every sector written before
/// and after the snapshot holds its count. The same boot then takes a diff snapshot two counts
/// later: alone it is refused, laid over the full snapshot's memory it continues from its count.
/// </summary>
public sealed class LinuxSnapshotTests
{
    [DefaultGuestFact]
    public void TheDefaultGuestContinuesItsCounterAndKeepsItsDiskAfterARestore()
    {
        using var directory = new TempDirectory();
        string state = directory.File("vm.state");
        string memory = directory.File("vm.mem");
        var before = new CapturedOutput();
        MachineConfiguration configuration = CountingGuest.Configuration(directory, before, out string disk);

        string diffState = directory.File("vm-diff.state");
        string diffMemory = directory.File("vm-diff.mem");
        int lastBefore;
        int lastAtDiff;
        using (VirtualMachineMonitor source = VirtualMachineMonitor.Create(configuration))
        {
            Assert.Equal(SharpVisor.Boot.KernelDecompressor.Vmm, source.Boot.Decompressor);
            var run = new Thread(() => source.Run(TimeSpan.FromMinutes(10)));
            run.Start();
            WaitUntil(() => Counts(before.Text).LastOrDefault() >= 3, TimeSpan.FromMinutes(8), () => $"the guest never counted to 3:\n{Tail(before.Text)}");
            Assert.True(source.Pause(TimeSpan.FromSeconds(10)));
            lastBefore = Counts(before.Text).Last();
            source.SaveSnapshot(state, memory);

            // The same boot goes on for a diff: two more counts, then the pages changed since.
            source.Resume();
            WaitUntil(() => Counts(before.Text).LastOrDefault() >= lastBefore + 2, TimeSpan.FromMinutes(3), () => $"the guest did not count on after the snapshot:\n{Tail(before.Text)}");
            Assert.True(source.Pause(TimeSpan.FromSeconds(10)));
            lastAtDiff = Counts(before.Text).Last();
            source.SaveSnapshot(diffState, diffMemory, diff: true);
            source.Stop();
            source.Resume();
            run.Join();
        }

        var after = new CapturedOutput();
        using VirtualMachineMonitor restored = VirtualMachineMonitor.Restore(state, memory, c => c with { SerialOutput = after });
        Assert.Equal(SharpVisor.Boot.KernelDecompressor.Vmm, restored.Configuration.KernelDecompressor);
        var restoredRun = new Thread(() => restored.Run(TimeSpan.FromMinutes(5)));
        restoredRun.Start();
        int target = lastBefore + 4;
        WaitUntil(() => Counts(after.Text).LastOrDefault() >= target, TimeSpan.FromMinutes(3), () => $"the restored guest did not count on from {lastBefore}:\n{Tail(after.Text)}");
        Assert.True(restored.Pause(TimeSpan.FromSeconds(10)));
        restored.Stop();
        restored.Resume();
        restoredRun.Join();

        int[] counts = Counts(after.Text);
        Assert.DoesNotContain("Linux version", after.Text);
        Assert.InRange(counts[0], lastBefore, lastBefore + 1);
        Assert.Equal(Enumerable.Range(counts[0], counts.Length), counts);

        AssertDiskHoldsCounts(disk, counts[^1]);

        // The diff on its own is refused; laid over the full snapshot's memory (Firecracker's
        // rebase-snap, what PUT /snapshot/load takes) it continues from the diff's count.
        SnapshotException alone = Assert.Throws<SnapshotException>(() => VirtualMachineMonitor.Restore(diffState, diffMemory, c => c with { SerialOutput = new CapturedOutput() }).Dispose());
        Assert.Contains("holds only the diff's pages", alone.Message);
        string merged = directory.File("merged.mem");
        File.Copy(memory, merged);
        Assert.True(SnapshotMemorySection.Rebase(merged, diffState, diffMemory) > 0);
        var afterDiff = new CapturedOutput();
        using (VirtualMachineMonitor fromDiff = VirtualMachineMonitor.Restore(diffState, merged, c => c with { SerialOutput = afterDiff }))
        {
            var diffRun = new Thread(() => fromDiff.Run(TimeSpan.FromMinutes(5)));
            diffRun.Start();
            WaitUntil(() => Counts(afterDiff.Text).LastOrDefault() >= lastAtDiff + 3, TimeSpan.FromMinutes(3), () => $"the guest restored from base+diff did not count on from {lastAtDiff}:\n{Tail(afterDiff.Text)}");
            Assert.True(fromDiff.Pause(TimeSpan.FromSeconds(10)));
            fromDiff.Stop();
            fromDiff.Resume();
            diffRun.Join();
        }

        int[] diffCounts = Counts(afterDiff.Text);
        Assert.DoesNotContain("Linux version", afterDiff.Text);
        Assert.InRange(diffCounts[0], lastAtDiff, lastAtDiff + 1);
        Assert.Equal(Enumerable.Range(diffCounts[0], diffCounts.Length), diffCounts);
    }
}
