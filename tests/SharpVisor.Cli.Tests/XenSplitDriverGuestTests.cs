using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// Issue 11, the split drivers: under `--xen pvh` and `--xen hvm`, `--disk` is a Xen vbd driven by
/// the default guest's xen-blkfront and `--net` a vif driven by xen-netfront. One boot per domain
/// type and vCPU count (in a network namespace, with a TAP) carries every assertion: the kernel
/// found Xen, its console is hvc0, the disk's size, a dd pattern read back through the ring and
/// found in the host file, the xenbus state, eth0 pinging the host and a TCP stream each way, and
/// a write that the guest synced surviving a kill -9 of the VMM. Under hvm the guest also found the
/// Xen platform PCI device and unplugged the emulated disks and NICs before its PV drivers bound.
/// Under `--xen pv` the same checks run on a PV domain, whose grant entries, rings and page tables
/// name machine frames (the P2M is not the identity), on one vCPU and on two (VCPUOP_initialise/up).
/// </summary>
public sealed class XenSplitDriverGuestTests : IDisposable
{
    private const int PatternSize = 1 << 20;
    private const string BackendState = "/local/domain/0/backend/vbd/1/51712/state";

    private readonly string _directory = Directory.CreateTempSubdirectory("sv-xenblk-").FullName;
    private readonly byte[] _pattern = RandomNumberGenerator.GetBytes(PatternSize);
    private readonly byte[] _synced = RandomNumberGenerator.GetBytes(PatternSize);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DefaultGuestTheory(NeedsNetwork = true)]
    [InlineData("pvh", 1)]
    [InlineData("pvh", 2)]
    [InlineData("hvm", 1)]
    [InlineData("hvm", 2)]
    [InlineData("pv", 1)]
    [InlineData("pv", 2)]
    public void BlkfrontAndNetfrontMoveDataThroughBlkbackAndNetbackAndASyncedWriteSurvivesAKill9(string type, int cpus)
    {
        bool hvm = type == "hvm";
        bool pv = type == "pv";
        string image = Path.Combine(_directory, "xvda.img");
        using (FileStream file = File.Create(image))
        {
            file.SetLength(16 << 20);
        }

        // blkfront's insmod waits for the device to connect, but only so long (30 s of guest time):
        // on a loaded host the connection can finish after it; wait for the disk, then look.
        string hook =
            "echo \"XEN-TYPE $(cat /sys/hypervisor/type)\"\n" +
            "dmesg | grep -m1 -E 'Booting (paravirtualized )?kernel on' | sed 's/^.*Booting/DMESG Booting/'\n" +
            "grep -o '^hvc0' /proc/consoles | sed 's/^/CONSOLE /'\n" +
            "for d in /sys/bus/pci/devices/*; do [ \"$(cat $d/vendor)\" = 0x5853 ] && echo \"PLATFORM $(cat $d/device) $(basename $(readlink $d/driver))\"; done\n" +
            "echo PCI-SCAN-DONE\n" +
            "i=0; while [ ! -e /sys/block/xvda/size ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n" +
            "echo \"XVDA $(cat /sys/block/xvda/size) RO $(cat /sys/block/xvda/ro)\"\n" +
            "dd if=/pattern.bin of=/dev/xvda bs=64k seek=2 conv=fsync; echo \"DD-RC $?\"\n" +
            "echo 3 > /proc/sys/vm/drop_caches\n" +
            "echo \"READBACK $(dd if=/dev/xvda bs=64k skip=2 count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)\"\n" +
            // XenStore through the kernel's xenbus device: XS_READ of the back end's state.
            "exec 3<>/dev/xen/xenbus\n" +
            $"printf '{XsRead(BackendState)}' >&3\n" +
            "echo \"XS-STATE $(dd bs=256 count=1 <&3 2>/dev/null | tail -c 1)\"\n" +
            "ip addr add 10.79.3.2/24 dev eth0 && ip link set eth0 up\n" +
            "ping -c 3 -W 5 10.79.3.1 >/dev/null; echo \"PING-RC $?\"\n" +
            "nc 10.79.3.1 7000 < /pattern.bin; echo \"NC-SEND $?\"\n" +
            "echo LISTENING\n" +
            "nc -l -p 7001 < /dev/null > /tmp/in; echo \"NC-RECV $? $(md5sum < /tmp/in)\"\n" +
            "dd if=/synced.bin of=/dev/xvda bs=64k seek=64 2>/dev/null; sync; echo SYNCED\n" +
            "sleep 3600\n";
        using NetworkNamespace ns = NetworkNamespace.Create();
        ns.Ip("tuntap", "add", "dev", "svx0", "mode", "tap", "vnet_hdr");
        ns.Exec("sysctl", "-qw", "net.ipv6.conf.svx0.disable_ipv6=1");
        ns.Ip("addr", "add", "10.79.3.1/24", "dev", "svx0");
        ns.Ip("link", "set", "svx0", "up");
        using Socket listener = ns.Enter(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Parse("10.79.3.1"), 7000));
            socket.Listen(1);
            return socket;
        });
        byte[] toGuest = RandomNumberGenerator.GetBytes(PatternSize);
        using GuestRun run = GuestRun.Start(_directory, hook,
            new Dictionary<string, byte[]> { ["pattern.bin"] = _pattern, ["synced.bin"] = _synced },
            ["--xen", type, "--cpus", cpus.ToString(System.Globalization.CultureInfo.InvariantCulture), "--memory", "256M", "--disk", image, "--net", "tap=svx0,mac=06:00:0a:4f:03:02"], ns,
            commandLine: "console=hvc0 reboot=k panic=-1");

        Assert.Equal("XEN-TYPE xen", run.WaitForLine("XEN-TYPE"));
        Assert.Equal(hvm ? "DMESG Booting paravirtualized kernel on Xen HVM" : pv ? "DMESG Booting kernel on Xen" : "DMESG Booting kernel on Xen PVH", run.WaitForLine("DMESG Booting"));
        Assert.Equal("CONSOLE hvc0", run.WaitForLine("CONSOLE"));
        run.WaitForLine("PCI-SCAN-DONE");
        if (hvm)
        {
            Assert.Contains("PLATFORM 0x0001 xen-platform-pci", run.Lines);
        }
        else
        {
            Assert.DoesNotContain(run.Lines, l => l.StartsWith("PLATFORM", StringComparison.Ordinal));
        }

        Assert.Equal("XVDA 32768 RO 0", run.WaitForLine("XVDA"));
        Assert.Equal("DD-RC 0", run.WaitForLine("DD-RC"));
        Assert.Equal($"READBACK {Convert.ToHexStringLower(MD5.HashData(_pattern))}", run.WaitForLine("READBACK"));
        Assert.Equal("XS-STATE 4", run.WaitForLine("XS-STATE"));   // Connected
        Assert.Equal(_pattern, File.ReadAllBytes(image).AsSpan(128 << 10, PatternSize).ToArray());

        // eth0 is netfront over netback over the TAP: ping, then a stream each way.
        Assert.Equal("PING-RC 0", run.WaitForLine("PING-RC"));
        using (Socket connection = listener.Accept())
        {
            using var stream = new NetworkStream(connection);
            using var received = new MemoryStream();
            stream.CopyTo(received);
            Assert.Equal(_pattern, received.ToArray());
        }

        Assert.Equal("NC-SEND 0", run.WaitForLine("NC-SEND"));
        run.WaitForLine("LISTENING");
        using (Socket client = ConnectWithRetry(ns, new IPEndPoint(IPAddress.Parse("10.79.3.2"), 7001)))
        {
            client.Send(toGuest);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal($"NC-RECV 0 {Convert.ToHexStringLower(MD5.HashData(toGuest))}  -", run.WaitForLine("NC-RECV"));
        }

        run.WaitForLine("SYNCED");
        run.KillHard();
        byte[] disk = File.ReadAllBytes(image);
        Assert.Equal(_pattern, disk.AsSpan(128 << 10, PatternSize).ToArray());
        Assert.Equal(_synced, disk.AsSpan(4 << 20, PatternSize).ToArray());

        string[] lines = run.Lines;
        Assert.Contains(lines, l => l.Contains(pv ? $"smp: Brought up 1 node, {cpus} CPU" : $"smpboot: Total of {cpus} processors activated", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("xen:events: Xen HVM callback vector for event delivery is enabled", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("xen:grant_table: Grant tables using version 1 layout", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Call Trace:", StringComparison.Ordinal) || l.Contains("Kernel panic", StringComparison.Ordinal));
        if (hvm)
        {
            // The unplug protocol on ports 0x10/0x12 succeeded: only then do blkfront and netfront bind.
            Assert.Contains(lines, l => l.Contains("Netfront and the Xen platform PCI driver have been compiled for this kernel: unplug emulated NICs.", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.Contains("Blkfront and the Xen platform PCI driver have been compiled for this kernel: unplug emulated disks.", StringComparison.Ordinal));
            Assert.Contains("xen platform: the guest unplugged emulated devices, mask 0x3", run.StandardError);
        }

        Assert.Contains("SELF-CHECK block xvda sectors=32768", lines);
        Assert.Contains("SELF-CHECK xen vbd-51712 driver=vbd", lines);
        Assert.Contains("SELF-CHECK xen vif-0 driver=vif", lines);
        Assert.Contains(lines, l => l.StartsWith("SELF-CHECK net eth0 mac=06:00:0a:4f:03:02", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("blkfront: xvda: flush diskcache: enabled", StringComparison.Ordinal) && l.Contains("indirect descriptors: enabled", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("SELF-CHECK virtio", StringComparison.Ordinal) && l.Contains("device=0x0002", StringComparison.Ordinal));
        Assert.Contains("disk0: xen vbd 51712 /dev/xvda", run.StandardError);
        Assert.Contains("net0: xen vif 0 on TAP svx0, MAC 06:00:0a:4f:03:02", run.StandardError);
        Assert.DoesNotContain("xen blkback", run.StandardError);   // no refused request, no failure
        Assert.DoesNotContain("xen netback", run.StandardError);
    }

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

    /// <summary>An xs_wire XS_READ request (type 2, request id 9) for <paramref name="path"/>, as printf octal escapes.</summary>
    private static string XsRead(string path)
    {
        byte[] payload = Encoding.ASCII.GetBytes(path + "\0");
        var message = new byte[16 + payload.Length];
        BitConverter.TryWriteBytes(message.AsSpan(0), 2u);
        BitConverter.TryWriteBytes(message.AsSpan(4), 9u);
        BitConverter.TryWriteBytes(message.AsSpan(12), (uint)payload.Length);
        payload.CopyTo(message, 16);
        var text = new StringBuilder();
        foreach (byte b in message)
        {
            text.Append(b is >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'/' ? ((char)b).ToString() : $"\\{Convert.ToString(b, 8).PadLeft(3, '0')}");
        }

        return text.ToString();
    }
}
