using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Migration;
using SharpVisor.Host.Vmm;
using SharpVisor.TestSupport;

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
    private const string Hook = """
        i=0
        while [ $i -lt 400 ]; do
            i=$((i+1))
            printf 'DISK %08d' $i | dd of=/dev/vda bs=512 seek=$i conv=notrunc,fsync 2>/dev/null
            echo "COUNT $i"
            sleep 1
        done
        """;

    [DefaultGuestFact]
    public void TheDefaultGuestCountsOnAtTheDestinationAndNoDiskWriteIsLost()
    {
        using var directory = new TempDirectory();
        string cpio = directory.File("hook.cpio");
        new CpioArchive().AddFile("hook.sh", Hook).WriteTo(cpio);
        string disk = directory.File("disk.img");
        File.WriteAllBytes(disk, new byte[1 << 20]);
        var before = new CapturedOutput();
        var configuration = new MachineConfiguration
        {
            KernelPath = GuestBootCapability.Kernel,
            InitrdPath = GuestBootCapability.Initrd,
            ExtraInitrdPaths = [cpio],
            CommandLine = "console=ttyS0 reboot=k panic=-1 no_timer_check autopoweroff",
            MemorySize = 256UL << 20,
            Accelerator = AcceleratorKind.Emulator,
            Mmu = MmuKind.Shadow,
            Disks = [new DiskConfiguration(disk)],
            SerialOutput = before,
        };

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

        byte[] image = File.ReadAllBytes(disk);
        for (int i = 1; i <= counts[^1]; i++)
        {
            Assert.Equal($"DISK {i:D8}", Encoding.ASCII.GetString(image, i * 512, 13));
        }
    }

    private static int[] Counts(string text) =>
        Regex.Matches(text, @"^COUNT (\d+)\r?$", RegexOptions.Multiline).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    private static string Tail(string text) => text.Length > 3000 ? text[^3000..] : text;

    private static void WaitUntil(Func<bool> condition, TimeSpan timeout, Func<string> what)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what());
            Thread.Sleep(100);
        }
    }
}
