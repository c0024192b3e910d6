using System.Net;
using System.Net.Sockets;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Migration;
using SharpVisor.Host.Tests.Snapshots;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Migration;

/// <summary>
/// Live migration between two machines in this process over loopback TCP (docs/migration.md),
/// with the counting guest of <see cref="EmulatorSnapshotTests"/>: it stores to its state page all
/// the time, so pre-copy always has dirty pages, and the destination must end with exactly the
/// uninterrupted run's value. The failures leave the source running on.
/// </summary>
public sealed class MigrationTests
{
    private const int Iterations = 60_000_000;

    [Theory]
    [InlineData(MmuMode.Shadow, 1)]
    [InlineData(MmuMode.Nested, 2)]
    public void TheDestinationContinuesTheGuestExactly(MmuMode mmu, int vcpus) =>
        MigrateTheCountingGuest(Configuration(mmu, vcpus), Iterations);

    /// <summary>On KVM: KVM_GET_DIRTY_LOG rounds, then KVM's vCPU and VM state (the loop runs ~50 k rounds/s on this machine's PVM-backed KVM).</summary>
    [KvmFact]
    public void AKvmGuestMigratesAndEndsWithTheUninterruptedValue() =>
        MigrateTheCountingGuest(Configuration(null, 1, AcceleratorKind.Kvm), 400_000);

    private static void MigrateTheCountingGuest(Func<TempDirectory, int, MachineConfiguration> configure, int iterations)
    {
        using var directory = new TempDirectory();
        MachineConfiguration configuration = configure(directory, iterations);
        using VirtualMachineMonitor source = VirtualMachineMonitor.Create(configuration);
        var sourceRun = new Thread(() => source.Run(TimeSpan.FromMinutes(3)));
        sourceRun.Start();
        WaitForCounting(source);

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        VirtualMachineMonitor? destination = null;
        Exception? receiveError = null;
        var receive = new Thread(() =>
        {
            try
            {
                using TcpClient client = listener.AcceptTcpClient();
                destination = VirtualMachineMonitor.ReceiveMigration(client.GetStream(), c => c with { SerialOutput = new CapturedOutput() });
            }
            catch (Exception e)
            {
                receiveError = e;
            }
        });
        receive.Start();

        var lines = new List<string>();
        MigrationResult result;
        using (var connection = new TcpClient())
        {
            connection.Connect(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
            result = source.MigrateTo(connection.GetStream(), new MigrationOptions { DowntimeTarget = TimeSpan.FromMilliseconds(100) }, lines.Add);
        }

        receive.Join();
        Assert.Null(receiveError);
        uint handedOver = source.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4);
        source.Stop("migrated");
        source.Resume();
        sourceRun.Join();

        Assert.NotNull(destination);
        using (destination)
        {
            Assert.Contains(lines, l => l.StartsWith("round 1: sent 4096 pages", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("stop-and-copy:", StringComparison.Ordinal));

            // The pause is accounted for phase by phase, the destination's load by its own clock.
            Assert.Contains(lines, l => l.StartsWith("stop-and-copy phases: pause ", StringComparison.Ordinal));
            StopAndCopyPhases phases = Assert.IsType<StopAndCopyPhases>(result.Phases);
            Assert.NotNull(phases.DestinationLoad);
            Assert.True(phases.DestinationLoad <= phases.Ready, $"the destination's load ({phases.DestinationLoad}) fits in the wait for Ready ({phases.Ready})");
            TimeSpan sum = phases.Pause + phases.DirtyFetch + phases.LastPages + phases.State + phases.Ready + phases.Commit;
            Assert.True((sum - result.Downtime).Duration() < TimeSpan.FromMilliseconds(1), $"the phases ({sum}) add up to the downtime ({result.Downtime})");
            Assert.True(result.Rounds >= 2, string.Join("\n", lines));
            Assert.True(handedOver < (uint)iterations, $"the guest had finished before the migration ({handedOver})");
            Assert.Equal(handedOver, destination.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4));
            RunOutcome outcome = destination.Run(TimeSpan.FromMinutes(3));
            Assert.Equal((MachineStopReason.DebugExit, (EmulatorSnapshotTests.Done << 1) | 1), (outcome.Reason, outcome.ExitStatus));
            Assert.Equal(EmulatorSnapshotTests.ExpectedValue(iterations), destination.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress));
        }
    }

    [Fact]
    public void AMissingDiskOrAClosedDestinationLeavesTheSourceRunning()
    {
        using var directory = new TempDirectory();
        string disk = directory.File("disk.img");
        File.WriteAllBytes(disk, new byte[1 << 20]);
        MachineConfiguration configuration = Configuration(MmuMode.Shadow, 1)(directory, Iterations) with { Disks = [new DiskConfiguration(disk)] };
        using VirtualMachineMonitor source = VirtualMachineMonitor.Create(configuration);
        var sourceRun = new Thread(() => source.Run(TimeSpan.FromMinutes(3)));
        sourceRun.Start();
        try
        {
            WaitForCounting(source);

            // The destination does not see the disk: refused before any memory is sent.
            string hidden = disk + ".elsewhere";
            File.Move(disk, hidden);
            var refused = Assert.Throws<MigrationException>(() => Migrate(source, peer: stream => VirtualMachineMonitor.ReceiveMigration(stream).Dispose()));
            File.Move(hidden, disk);
            Assert.Contains($"disk image {disk} does not exist on the destination", refused.Message);
            Assert.DoesNotContain('\n', refused.Message);
            AssertStillCounting(source);

            // The destination reads the hello and a few pages, then is gone.
            var closed = Assert.Throws<MigrationException>(() => Migrate(source, peer: stream =>
            {
                var channel = new MigrationChannel(stream);
                channel.Receive();
                channel.Receive();
                channel.Send(MigrationFrameType.Accept, ReadOnlySpan<byte>.Empty);
                channel.Flush();
                channel.Receive();
            }));
            Assert.Matches("closed|connection", closed.Message);
            Assert.False(source.IsPaused);
            AssertStillCounting(source);
        }
        finally
        {
            source.Stop();
            source.Resume();
            sourceRun.Join();
        }
    }

    [Fact]
    public void TheAnnouncementIsARarpBroadcastFromTheGuestsMac()
    {
        byte[] mac = [0x06, 0x00, 0x0a, 0x00, 0x00, 0x02];
        byte[] frame = VirtualMachineMonitor.RarpAnnouncement(mac);
        Assert.Equal(12 + 60, frame.Length);
        Assert.All(frame[..12], b => Assert.Equal(0, b)); // the TAP's virtio-net header: no offloads
        byte[] ethernet = frame[12..];
        Assert.Equal(Enumerable.Repeat((byte)0xFF, 6), ethernet[..6]);
        Assert.Equal(mac, ethernet[6..12]);
        Assert.Equal(new byte[] { 0x80, 0x35, 0, 1, 0x08, 0x00, 6, 4, 0, 3 }, ethernet[12..22]);
        Assert.Equal(mac, ethernet[22..28]);
        Assert.Equal(mac, ethernet[32..38]);
    }

    private static void Migrate(VirtualMachineMonitor source, Action<Stream> peer)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var thread = new Thread(() =>
        {
            using TcpClient client = listener.AcceptTcpClient();
            try
            {
                peer(client.GetStream());
            }
            catch (MigrationException)
            {
                // The destination's own error; the source's is what the test looks at.
            }
        });
        thread.Start();
        try
        {
            using var connection = new TcpClient();
            connection.Connect(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
            source.MigrateTo(connection.GetStream(), new MigrationOptions(), _ => { });
        }
        finally
        {
            thread.Join();
        }
    }

    private static Func<TempDirectory, int, MachineConfiguration> Configuration(MmuMode? mmu, int vcpus, AcceleratorKind accelerator = AcceleratorKind.Emulator) => (directory, iterations) =>
    {
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, EmulatorSnapshotTests.BuildKernel(iterations));
        return new MachineConfiguration
        {
            KernelPath = kernel,
            MemorySize = 16UL << 20,
            VcpuCount = vcpus,
            Accelerator = accelerator,
            Mmu = mmu?.ToMmuKind(),
            SerialOutput = new CapturedOutput(),
            EntropyDevice = false,
        };
    };

    private static void WaitForCounting(VirtualMachineMonitor vmm)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (vmm.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4) < 1000)
        {
            Assert.True(DateTime.UtcNow < deadline, "the guest never started counting");
            Thread.Sleep(20);
        }
    }

    private static void AssertStillCounting(VirtualMachineMonitor vmm)
    {
        uint before = vmm.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4);
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (vmm.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4) == before)
        {
            Assert.True(DateTime.UtcNow < deadline, "the source stopped counting");
            Thread.Sleep(20);
        }
    }
}
