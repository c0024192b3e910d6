using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.Host.Vmm;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests;

/// <summary>
/// The default guest as the snapshot and migration tests use it: its hook counts once a second
/// on the serial console ("COUNT n") and writes each count to its own sector of a virtio disk with
/// fsync, so a test can see that a moved or restored guest went on without a reboot and lost no
/// disk write.
/// </summary>
internal static class CountingGuest
{
    public const string Hook = """
        i=0
        while [ $i -lt 400 ]; do
            i=$((i+1))
            printf 'DISK %08d' $i | dd of=/dev/vda bs=512 seek=$i conv=notrunc,fsync 2>/dev/null
            echo "COUNT $i"
            sleep 1
        done
        """;

    /// <summary>The machine: the default guest with the hook, 256 MiB, the emulator (shadow MMU), a 1 MiB disk in <paramref name="directory"/>.</summary>
    public static MachineConfiguration Configuration(TempDirectory directory, Stream serialOutput, out string disk)
    {
        string cpio = directory.File("hook.cpio");
        new CpioArchive().AddFile("hook.sh", Hook).WriteTo(cpio);
        disk = directory.File("disk.img");
        File.WriteAllBytes(disk, new byte[1 << 20]);
        return new MachineConfiguration
        {
            KernelPath = GuestBootCapability.Kernel,
            InitrdPath = GuestBootCapability.Initrd,
            ExtraInitrdPaths = [cpio],
            CommandLine = "console=ttyS0 reboot=k panic=-1 no_timer_check autopoweroff",
            MemorySize = 256UL << 20,
            Accelerator = AcceleratorKind.Emulator,
            Mmu = MmuKind.Shadow,
            Disks = [new DiskConfiguration(disk)],
            SerialOutput = serialOutput,
        };
    }

    /// <summary>The counts in a console's text, in order.</summary>
    public static int[] Counts(string text) =>
        Regex.Matches(text, @"^COUNT (\d+)\r?$", RegexOptions.Multiline).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Every sector 1..<paramref name="lastCount"/> of the disk holds its count.</summary>
    public static void AssertDiskHoldsCounts(string disk, int lastCount)
    {
        byte[] image = File.ReadAllBytes(disk);
        for (int i = 1; i <= lastCount; i++)
        {
            Assert.Equal($"DISK {i:D8}", Encoding.ASCII.GetString(image, i * 512, 13));
        }
    }

    public static string Tail(string text) => text.Length > 3000 ? text[^3000..] : text;

    public static void WaitUntil(Func<bool> condition, TimeSpan timeout, Func<string> what)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what());
            Thread.Sleep(100);
        }
    }
}
