using System.Net;
using System.Net.Sockets;
using SharpVisor.Host.Migration;
using SharpVisor.Host.Vmm;
using SharpVisor.TestSupport;
using static SharpVisor.Host.Tests.CountingGuest;

namespace SharpVisor.Host.Tests.Migration;

/// <summary>
/// Live migration of the default guest (Debian's kernel, busybox) on the emulator, one boot: the
/// guest counts once a second on its serial console and writes each count to its own sector of a
/// virtio disk with fsync; it is migrated over loopback TCP while it runs (pre-copy with the
/// guest dirtying memory and doing disk I/O). Source and destination output together hold every
/// count once, in order, the destination's without a reboot; every sector written holds its count.
/// </summary>
public sealed class LinuxMigrationTests
{
    [DefaultGuestFact]
    public void TheDefaultGuestCountsOnAtTheDestinationAndNoDiskWriteIsLost()
    {
        using var directory = new TempDirectory();
        var before = new CapturedOutput();
        MachineConfiguration configuration = CountingGuest.Configuration(directory, before, out string disk);

        var after = new CapturedOutput();
        VirtualMachineMonitor? destination = null;
        var lines = new List<string>();
        using (VirtualMachineMonitor source = VirtualMachineMonitor.Create(configuration))
        {
            var run = new Thread(() => source.Run(TimeSpan.FromMinutes(10)));
            run.Start();
            WaitUntil(() => Counts(before.Text).LastOrDefault() >= 3, TimeSpan.FromMinutes(8), () => $"the guest never counted to 3:\n{Tail(before.Text)}");

            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            Exception? receiveError = null;
            var receive = new Thread(() =>
            {
                try
                {
                    using TcpClient client = listener.AcceptTcpClient();
                    destination = VirtualMachineMonitor.ReceiveMigration(client.GetStream(), c => c with { SerialOutput = after });
                }
                catch (Exception e)
                {
                    receiveError = e;
                }
            });
            receive.Start();
            using (var connection = new TcpClient())
            {
                connection.Connect(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
                source.MigrateTo(connection.GetStream(), new MigrationOptions(), lines.Add);
            }

            receive.Join();
            Assert.Null(receiveError);
            source.Stop("migrated");
            source.Resume();
            run.Join();
        }

        Assert.NotNull(destination);
        using (destination)
        {
            var destinationRun = new Thread(() => destination.Run(TimeSpan.FromMinutes(5)));
            destinationRun.Start();
            int lastBefore = Counts(before.Text).Last();
            int target = lastBefore + 4;
            WaitUntil(() => Counts(before.Text + after.Text).LastOrDefault() >= target, TimeSpan.FromMinutes(3), () => $"the migrated guest did not count on from {lastBefore}:\n{Tail(after.Text)}\n{string.Join("\n", lines)}");
            Assert.True(destination.Pause(TimeSpan.FromSeconds(10)));
            destination.Stop();
            destination.Resume();
            destinationRun.Join();
        }

        // A line may be cut between the two consoles: they are one output.
        int[] counts = Counts(before.Text + after.Text);
        Assert.DoesNotContain("Linux version", after.Text);
        Assert.Equal(Enumerable.Range(1, counts.Length), counts);
        Assert.Contains(lines, l => l.StartsWith("stop-and-copy:", StringComparison.Ordinal));

        AssertDiskHoldsCounts(disk, counts[^1]);
    }
}
