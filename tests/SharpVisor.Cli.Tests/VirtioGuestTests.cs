using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// The virtio devices end to end with the default guest: Linux's own drivers against
/// SharpVisor's devices, scripted through a /hook.sh appended with --extra-initrd, checked
/// from the host — image bytes, a killed VMM, TCP through a TAP in a namespace, the balloon.
/// </summary>
public sealed partial class VirtioGuestTests : IDisposable
{
    private const int PatternSize = 1 << 20;

    private readonly string _directory = Directory.CreateTempSubdirectory("sv-guest-").FullName;
    private readonly byte[] _pattern = RandomNumberGenerator.GetBytes(PatternSize);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DefaultGuestFact(NeedsNetwork = true)]
    public void TheGuestSeesEveryDeviceAndBindsItsDriver()
    {
        string a = Image("a.img", 64 << 20);
        string b = Image("b.img", 8 << 20);
        using GuestRun run = GuestRun.Start(_directory, "true\n", arguments:
            ["--memory", "256M", "--disk", a, "--disk", $"{b},ro", "--net", "tap,mac=06:00:0a:00:00:07", "--balloon"]);

        run.WaitForLine("SELF-CHECK-END");
        Assert.Equal(0, run.WaitForExit());
        string[] virtio = run.Lines.Where(l => l.StartsWith("SELF-CHECK virtio", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, virtio.Count(l => l.Contains("device=0x0002") && l.Contains("driver=virtio_blk")));
        Assert.Single(virtio, l => l.Contains("device=0x0001") && l.Contains("driver=virtio_net"));
        Assert.Single(virtio, l => l.Contains("device=0x0005") && l.Contains("driver=virtio_balloon"));
        Assert.Single(virtio, l => l.Contains("device=0x0004") && l.Contains("driver=virtio_rng"));
        Assert.All(virtio, l => Assert.Contains("vendor=0x1af4", l));
        Assert.Contains("SELF-CHECK block vda sectors=131072", run.Lines);
        Assert.Contains("SELF-CHECK block vdb sectors=16384", run.Lines);
        Assert.Contains(run.Lines, l => l.StartsWith("SELF-CHECK net eth0 mac=06:00:0a:00:00:07", StringComparison.Ordinal));
    }

    [DefaultGuestFact]
    public void APatternTheGuestWritesWithDdIsInTheImage()
    {
        string image = Image("dd.img", 16 << 20);
        using GuestRun run = GuestRun.Start(_directory,
            "dd if=/pattern.bin of=/dev/vda bs=64k seek=2 oflag=direct conv=fsync\necho \"DD-RC $?\"\n",
            Files(), ["--disk", image]);

        Assert.Equal("DD-RC 0", run.WaitForLine("DD-RC"));
        Assert.Equal(0, run.WaitForExit());
        byte[] disk = File.ReadAllBytes(image);
        Assert.Equal(_pattern, disk.AsSpan(128 << 10, PatternSize).ToArray());
        Assert.All(disk.AsSpan(0, 128 << 10).ToArray(), b => Assert.Equal(0, b));
    }

    [DefaultGuestFact]
    public void AnImageTheHostPreparedIsReadBackByTheGuest()
    {
        string image = Image("prepared.img", 4 << 20);
        using (FileStream file = File.OpenWrite(image))
        {
            file.Position = 1 << 20;
            file.Write(_pattern);
        }

        using GuestRun run = GuestRun.Start(_directory,
            "echo \"MD5 $(dd if=/dev/vda bs=4096 skip=256 count=256 2>/dev/null | md5sum)\"\n",
            arguments: ["--disk", $"{image},ro"]);

        string line = run.WaitForLine("MD5 ");
        Assert.Equal(0, run.WaitForExit());
        Assert.Equal($"MD5 {Convert.ToHexStringLower(MD5.HashData(_pattern))}  -", line);
    }

    [DefaultGuestFact]
    public void AReadOnlyDiskRefusesWrites()
    {
        string image = Image("ro.img", 4 << 20);
        byte[] before = File.ReadAllBytes(image);
        using GuestRun run = GuestRun.Start(_directory,
            "echo \"RO $(cat /sys/block/vda/ro)\"\ndd if=/pattern.bin of=/dev/vda bs=4096 count=16 conv=fsync\necho \"DD-RC $?\"\n",
            Files(), ["--disk", $"{image},ro"]);

        Assert.Equal("RO 1", run.WaitForLine("RO "));
        Assert.NotEqual("DD-RC 0", run.WaitForLine("DD-RC"));
        Assert.Equal(0, run.WaitForExit());
        Assert.Equal(before, File.ReadAllBytes(image));
    }

    [DefaultGuestFact]
    public void AFlushedWriteSurvivesAKill9OfTheVmmRightAfterTheGuestReportsIt()
    {
        string image = Image("durable.img", 8 << 20);
        using GuestRun run = GuestRun.Start(_directory,
            "dd if=/pattern.bin of=/dev/vda bs=64k conv=fsync && echo FLUSHED-OK\nsleep 3600\n",
            Files(), ["--disk", image]);

        run.WaitForLine("FLUSHED-OK");
        run.KillHard();

        Assert.Equal(_pattern, File.ReadAllBytes(image).AsSpan(0, PatternSize).ToArray());
    }

    /// <summary>
    /// Also issue 17, item 3: this boot runs with pci=nomsi, so the NIC and the disk interrupt
    /// through INTx# and ISR reads only; a lost INTx (ISR set, line low) stalls the transfer.
    /// </summary>
    [DefaultGuestFact(NeedsNetwork = true)]
    public void GuestAndHostExchangeATcpStreamBothWaysThroughATapInANamespaceWithoutMsi()
    {
        string image = Image("intx.img", 8 << 20);
        using NetworkNamespace ns = NetworkNamespace.Create();
        ns.Ip("tuntap", "add", "dev", "svg0", "mode", "tap", "vnet_hdr");
        ns.Exec("sysctl", "-qw", "net.ipv6.conf.svg0.disable_ipv6=1");
        ns.Ip("addr", "add", "10.79.0.1/24", "dev", "svg0");
        ns.Ip("link", "set", "svg0", "up");
        using Socket listener = ns.Enter(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Parse("10.79.0.1"), 7000));
            s.Listen(1);
            return s;
        });
        byte[] toGuest = RandomNumberGenerator.GetBytes(PatternSize);
        string hook = """
            echo "MSI $(grep -c MSI /proc/interrupts) INTX $(grep -c virtio /proc/interrupts)"
            dd if=/pattern.bin of=/dev/vda bs=64k oflag=direct conv=fsync; echo "DD-RC $?"
            ip addr add 10.79.0.2/24 dev eth0 && ip link set eth0 up
            nc 10.79.0.1 7000 < /pattern.bin; echo "NC-SEND $?"
            echo LISTENING
            nc -l -p 7001 < /dev/null > /tmp/in; echo "NC-RECV $? $(md5sum < /tmp/in)"

            """;
        using GuestRun run = GuestRun.Start(_directory, hook, Files(), ["--net", "tap=svg0,mac=06:00:0a:4f:00:02", "--disk", image], ns, extraCommandLine: "pci=nomsi");

        // No MSI in the guest: every virtio interrupt is a shared INTx line.
        Assert.Matches("^MSI 0 INTX [1-9]", run.WaitForLine("MSI "));
        Assert.Equal("DD-RC 0", run.WaitForLine("DD-RC"));
        Assert.Equal(_pattern, File.ReadAllBytes(image).AsSpan(0, PatternSize).ToArray());

        // Guest to host: the whole pattern, then the guest closes its half.
        using (Socket connection = listener.Accept())
        {
            using var stream = new NetworkStream(connection);
            using var received = new MemoryStream();
            stream.CopyTo(received);
            Assert.Equal(_pattern, received.ToArray());
        }

        Assert.Equal("NC-SEND 0", run.WaitForLine("NC-SEND"));

        // Host to guest: the guest listens, the host connects from inside the namespace.
        run.WaitForLine("LISTENING");
        using Socket client = ConnectWithRetry(ns, new IPEndPoint(IPAddress.Parse("10.79.0.2"), 7001));
        client.Send(toGuest);
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal($"NC-RECV 0 {Convert.ToHexStringLower(MD5.HashData(toGuest))}  -", run.WaitForLine("NC-RECV"));
        Assert.Equal(0, run.WaitForExit());
    }

    [DefaultGuestFact]
    public void TheBalloonInflatesAndTheGuestsFreeMemoryDrops()
    {
        // The balloon driver comes up during boot; the hook unloads it (the balloon deflates),
        // measures, loads it again (it inflates to the 64 MiB target) and measures again.
        string hook = """
            rmmod virtio_balloon
            before=$(grep MemFree /proc/meminfo | tr -s ' ' | cut -d' ' -f2)
            insmod /lib/modules/$(uname -r)/virtio_balloon.ko
            for i in $(seq 120); do
                after=$(grep MemFree /proc/meminfo | tr -s ' ' | cut -d' ' -f2)
                [ $((before - after)) -ge 60000 ] && break
                sleep 1
            done
            echo "BALLOON before=$before after=$after"

            """;
        using GuestRun run = GuestRun.Start(_directory, hook, arguments: ["--memory", "256M", "--balloon", "64M"]);

        Match m = BalloonLine().Match(run.WaitForLine("BALLOON "));
        Assert.Equal(0, run.WaitForExit());
        long before = long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        long after = long.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(before - after >= 60000, $"free memory went from {before} kB to {after} kB; the balloon should take 65536 kB");
    }

    [GeneratedRegex(@"^BALLOON before=(\d+) after=(\d+)$")]
    private static partial Regex BalloonLine();

    /// <summary>Connects from inside the namespace, retrying while the guest's listener comes up.</summary>
    private static Socket ConnectWithRetry(NetworkNamespace ns, EndPoint endPoint)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            Socket socket = ns.Enter(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            try
            {
                socket.Connect(endPoint);
                return socket;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                socket.Dispose();
                Thread.Sleep(500);
            }
        }
    }

    private Dictionary<string, byte[]> Files() => new() { ["pattern.bin"] = _pattern };

    private string Image(string name, int size)
    {
        string path = Path.Combine(_directory, name);
        using FileStream file = File.Create(path);
        file.SetLength(size);
        return path;
    }
}
