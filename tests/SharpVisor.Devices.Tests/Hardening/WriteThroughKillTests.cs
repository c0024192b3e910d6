using System.Diagnostics;
using System.Text;
using SharpVisor.Devices.Virtio;
using Xunit.Abstractions;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>
/// Issue 17, item 5, end to end: a VMM process is killed with SIGKILL right after its virtio-blk
/// device completed a write for a driver that did not negotiate VIRTIO_BLK_F_FLUSH, and the data
/// must be on the disk. After a kill the written data is still in the host page cache, so reading
/// the image file would find it whether or not the device synced it; this test reads what reached
/// the disk instead — the image lives on ext4 on a loop device, and its blocks are read from the
/// loop device with O_DIRECT (see <see cref="LoopExt4Filesystem"/>). The Unsafe cache mode (no
/// sync without FLUSH, the old behaviour) is the control: its completed write must be missing from
/// the disk, which shows the probe can tell write-through from write-back.
/// </summary>
public sealed class WriteThroughKillTests
{
    private const int ImageSize = 1 << 20;
    private const int SectorsPerBlock = KillableBlockVmm.WriteSize / 512;
    private const int UnsafeAttempts = 3;
    private const int KilledBySigkill = 128 + 9;

    private readonly ITestOutputHelper _output;

    public WriteThroughKillTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [LoopDeviceFact]
    public void ACompletedWriteWithoutFlushNegotiatedIsOnTheDiskAfterAKill9OfTheVmm()
    {
        if (!LoopExt4Filesystem.TryCreate(32 << 20, out LoopExt4Filesystem? filesystem, out string reason))
        {
            Assert.Fail($"SKIPPED — NEEDS root/loop devices: {reason}");
        }

        using LoopExt4Filesystem fs = filesystem!;
        string image = Path.Combine(fs.MountPoint, "disk.img");

        // Every block allocated, written and synced first: ext4 then overwrites in place, so the
        // physical blocks found now are where the VMM's writes land, and the map needs no later
        // lookup that might flush.
        using (var file = new FileStream(image, FileMode.CreateNew, FileAccess.Write))
        {
            file.Write(new byte[ImageSize]);
            file.Flush(flushToDisk: true);
        }

        long[] diskOffsets = new long[UnsafeAttempts + 1];
        for (int i = 0; i < diskOffsets.Length; i++)
        {
            diskOffsets[i] = fs.PhysicalOffset(image, (long)Sector(i) * 512);
        }

        _output.WriteLine($"image {image} on {fs.Device}; probe blocks at disk offsets {string.Join(", ", diskOffsets)}");

        // Control: in Unsafe mode the completed write must be missing from the disk. Write-back can
        // in principle happen in the few milliseconds before the read (the dirty-expire window is
        // ~30 s, but a host-wide sync or memory pressure writes back early), so a few tries.
        var unsafePatterns = new List<(int Attempt, byte[] Pattern)>();
        bool lostOnce = false;
        for (int attempt = 0; attempt < UnsafeAttempts && !lostOnce; attempt++)
        {
            byte[] pattern = KillAfterCompletedWrite(image, DiskCacheMode.Unsafe, Sector(attempt));
            var clock = Stopwatch.StartNew();
            bool onDisk = fs.ReadFromDisk(diskOffsets[attempt], KillableBlockVmm.WriteSize).AsSpan().SequenceEqual(pattern);
            _output.WriteLine($"unsafe attempt {attempt + 1}: the completed write {(onDisk ? "IS" : "is not")} on the disk "
                + $"(read {clock.ElapsedMilliseconds} ms after the kill)");
            unsafePatterns.Add((attempt, pattern));
            lostOnce = !onDisk;
        }

        // A sync puts the Unsafe writes exactly where the probe looks: the probe reads the right blocks.
        using (var synced = new RawDiskImage(image))
        {
            synced.Flush();
        }

        foreach ((int attempt, byte[] pattern) in unsafePatterns)
        {
            Assert.Equal(pattern, fs.ReadFromDisk(diskOffsets[attempt], KillableBlockVmm.WriteSize));
        }

        Assert.True(lostOnce, $"in all {UnsafeAttempts} Unsafe runs the unsynced write reached the disk before it was read: "
            + "this host writes back dirty pages within milliseconds, so the probe cannot tell write-through from write-back here");

        // The default mode with FLUSH not negotiated: write-through, so the write is on the disk.
        byte[] written = KillAfterCompletedWrite(image, DiskCacheMode.Writeback, Sector(UnsafeAttempts));
        Assert.True(fs.ReadFromDisk(diskOffsets[UnsafeAttempts], KillableBlockVmm.WriteSize).AsSpan().SequenceEqual(written),
            "a write completed without FLUSH negotiated is not on the disk after kill -9 of the VMM: it was acknowledged before it was synced");
        _output.WriteLine("write-through: the completed write is on the disk after kill -9");
    }

    /// <summary>Each run writes its own 4 KiB block (sector 8, 16, ...), so no run sees another's data.</summary>
    private static int Sector(int run) => (run + 1) * SectorsPerBlock;

    /// <summary>Runs <see cref="KillableBlockVmm"/>, waits for its write to complete, kills it with SIGKILL; returns the bytes written.</summary>
    private byte[] KillAfterCompletedWrite(string image, DiskCacheMode mode, int sector)
    {
        int seed = Random.Shared.Next();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { typeof(KillableBlockVmm).Assembly.Location, KillableBlockVmm.Verb, image, mode.ToString(), sector.ToString(), seed.ToString() })
        {
            start.ArgumentList.Add(a);
        }

        var clock = Stopwatch.StartNew();
        using Process vmm = Process.Start(start)!;
        var stderr = new StringBuilder();
        vmm.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }
        };
        vmm.BeginErrorReadLine();

        // Blocking reads on this thread: async reads waited ~20 s for a thread-pool thread under the test host.
        using var watchdog = new Timer(_ => KillQuietly(vmm), null, TimeSpan.FromSeconds(120), Timeout.InfiniteTimeSpan);
        try
        {
            string? line;
            do
            {
                line = vmm.StandardOutput.ReadLine();
                if (line is null)
                {
                    vmm.WaitForExit();
                    lock (stderr)
                    {
                        Assert.Fail($"{mode}: the VMM exited ({vmm.ExitCode}) before completing its write in {clock.Elapsed.TotalSeconds:F0} s: {stderr}");
                    }
                }
            }
            while (!line.StartsWith(KillableBlockVmm.CompletedPrefix, StringComparison.Ordinal));

            long completedAfter = clock.ElapsedMilliseconds;
            watchdog.Change(Timeout.Infinite, Timeout.Infinite);

            // kill -9: Process.Kill sends SIGKILL on Linux; nothing in the VMM runs after this.
            vmm.Kill();
            vmm.WaitForExit();
            _output.WriteLine($"{mode}, sector {sector}: {line} ({completedAfter} ms after the VMM started); exit code {vmm.ExitCode}");
            Assert.Equal(KilledBySigkill, vmm.ExitCode);

            bool writeThrough = mode == DiskCacheMode.Writeback;
            Assert.Equal(
                $"{KillableBlockVmm.CompletedPrefix}status={VirtioBlockDevice.StatusOk} flush-negotiated=False "
                + $"write-through={writeThrough} data-syncs={(writeThrough ? 1 : 0)}",
                line);
        }
        finally
        {
            if (!vmm.HasExited)
            {
                vmm.Kill();
                vmm.WaitForExit();
            }
        }

        return KillableBlockVmm.Pattern(seed);
    }

    private static void KillQuietly(Process process)
    {
        try
        {
            process.Kill();
        }
        catch (InvalidOperationException)
        {
            // Already exited or disposed.
        }
    }
}
