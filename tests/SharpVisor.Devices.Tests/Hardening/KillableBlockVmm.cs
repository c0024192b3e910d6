using System.Buffers.Binary;
using System.Diagnostics;
using SharpVisor.Devices.Tests.Virtio;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>
/// A minimal VMM in a child process for <see cref="WriteThroughKillTests"/>: a virtio-blk device on
/// guest memory whose driver did not negotiate VIRTIO_BLK_F_FLUSH, one write request, and then —
/// once the device has put it on the used ring — a line on stdout and a wait to be killed with
/// SIGKILL. Nothing is closed or flushed after the completion: only what the device did before
/// completing the request counts.
/// </summary>
public static class KillableBlockVmm
{
    public const string Verb = "killable-block-vmm";

    /// <summary>The request's size: one 4 KiB filesystem block, so it maps onto one physical block.</summary>
    public const int WriteSize = 4096;

    public const string CompletedPrefix = "COMPLETED ";

    /// <summary>The bytes a run with <paramref name="seed"/> writes (the test recomputes them).</summary>
    public static byte[] Pattern(int seed)
    {
        byte[] bytes = new byte[WriteSize];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Arguments: IMAGE writeback|unsafe SECTOR SEED.</summary>
    public static int Run(string[] args)
    {
        if (args.Length != 4
            || !Enum.TryParse(args[1], ignoreCase: true, out DiskCacheMode mode)
            || !ulong.TryParse(args[2], out ulong sector)
            || !int.TryParse(args[3], out int seed))
        {
            Console.Error.WriteLine($"{Verb}: expected IMAGE writeback|unsafe SECTOR SEED");
            return 2;
        }

        var image = new RawDiskImage(args[0]);
        var rig = new DeviceRig(p => new VirtioBlockDevice(p.Memory, image, cacheMode: mode), featureMask: ~VirtioBlockDevice.FeatureFlush);
        var disk = (VirtioBlockDevice)rig.Device;

        ulong header = DeviceRig.Data(0);
        ulong data = DeviceRig.Data(1);
        ulong status = DeviceRig.Data(3);
        Span<byte> request = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(request, VirtioBlockDevice.RequestOut);
        BinaryPrimitives.WriteUInt64LittleEndian(request[8..], sector);
        rig.Platform.Memory.Write(header, request);
        rig.Platform.Memory.Write(data, Pattern(seed));
        rig.Platform.Memory.Write(status, (byte)0xEE);

        DriverRing ring = rig.Rings[0];
        ushort used = ring.UsedIndex;
        ring.AddChain((header, 16, false), (data, WriteSize, false), (status, 1, true));
        rig.Driver.Notify(0);

        // The driver's view of completion: the used index moved (whether the device ran the request
        // on the notifying thread or on a worker).
        var clock = Stopwatch.StartNew();
        while (ring.UsedIndex == used)
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                Console.Error.WriteLine($"{Verb}: the request did not complete in 30 s");
                return 1;
            }

            Thread.Sleep(1);
        }

        byte result = rig.Platform.Memory.Read<byte>(status);
        Console.Out.WriteLine($"{CompletedPrefix}status={result} flush-negotiated={disk.HasFeature(VirtioBlockDevice.FeatureFlush)} "
            + $"write-through={disk.WriteThrough} data-syncs={image.DataSyncs}");
        Console.Out.Flush();

        // Wait to be killed; the image and the rig stay open, as in a VMM that dies mid-run.
        Thread.Sleep(Timeout.Infinite);
        GC.KeepAlive(rig);
        return 0;
    }
}
