using System.Security.Cryptography;
using System.Text;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// Issue 11, blkback: `--xen pvh --disk` is a Xen vbd, and the default guest's xen-blkfront
/// drives it. One boot carries every assertion: the disk's size, a dd pattern read back through
/// the ring and found in the host file, the xenbus state, and a write that the guest synced
/// surviving a kill -9 of the VMM.
/// </summary>
public sealed class XenBlockGuestTests : IDisposable
{
    private const int PatternSize = 1 << 20;
    private const string BackendState = "/local/domain/0/backend/vbd/1/51712/state";

    private readonly string _directory = Directory.CreateTempSubdirectory("sv-xenblk-").FullName;
    private readonly byte[] _pattern = RandomNumberGenerator.GetBytes(PatternSize);
    private readonly byte[] _synced = RandomNumberGenerator.GetBytes(PatternSize);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DefaultGuestFact]
    public void BlkfrontWritesReadsAndSyncsThroughBlkbackAndTheDataSurvivesAKill9()
    {
        string image = Path.Combine(_directory, "xvda.img");
        using (FileStream file = File.Create(image))
        {
            file.SetLength(16 << 20);
        }

        string hook =
            "echo \"XVDA $(cat /sys/block/xvda/size) RO $(cat /sys/block/xvda/ro)\"\n" +
            "dd if=/pattern.bin of=/dev/xvda bs=64k seek=2 conv=fsync; echo \"DD-RC $?\"\n" +
            "echo 3 > /proc/sys/vm/drop_caches\n" +
            "echo \"READBACK $(dd if=/dev/xvda bs=64k skip=2 count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)\"\n" +
            // XenStore through the kernel's xenbus device: XS_READ of the back end's state.
            "exec 3<>/dev/xen/xenbus\n" +
            $"printf '{XsRead(BackendState)}' >&3\n" +
            "echo \"XS-STATE $(dd bs=256 count=1 <&3 2>/dev/null | tail -c 1)\"\n" +
            "dd if=/synced.bin of=/dev/xvda bs=64k seek=64 2>/dev/null; sync; echo SYNCED\n" +
            "sleep 3600\n";
        using GuestRun run = GuestRun.Start(_directory, hook,
            new Dictionary<string, byte[]> { ["pattern.bin"] = _pattern, ["synced.bin"] = _synced },
            ["--xen", "pvh", "--memory", "256M", "--disk", image], commandLine: "console=hvc0 reboot=k panic=-1");

        Assert.Equal("XVDA 32768 RO 0", run.WaitForLine("XVDA"));
        Assert.Equal("DD-RC 0", run.WaitForLine("DD-RC"));
        Assert.Equal($"READBACK {Convert.ToHexStringLower(MD5.HashData(_pattern))}", run.WaitForLine("READBACK"));
        Assert.Equal("XS-STATE 4", run.WaitForLine("XS-STATE"));   // Connected
        Assert.Equal(_pattern, File.ReadAllBytes(image).AsSpan(128 << 10, PatternSize).ToArray());

        run.WaitForLine("SYNCED");
        run.KillHard();
        byte[] disk = File.ReadAllBytes(image);
        Assert.Equal(_pattern, disk.AsSpan(128 << 10, PatternSize).ToArray());
        Assert.Equal(_synced, disk.AsSpan(4 << 20, PatternSize).ToArray());

        string[] lines = run.Lines;
        Assert.Contains("SELF-CHECK block xvda sectors=32768", lines);
        Assert.Contains("SELF-CHECK xen vbd-51712 driver=vbd", lines);
        Assert.Contains(lines, l => l.Contains("blkfront: xvda: flush diskcache: enabled", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("SELF-CHECK virtio", StringComparison.Ordinal) && l.Contains("device=0x0002", StringComparison.Ordinal));
        Assert.Contains("disk0: xen vbd 51712 /dev/xvda", run.StandardError);
        Assert.DoesNotContain("xen blkback", run.StandardError);   // no refused request, no failure
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
