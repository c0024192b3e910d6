using System.Buffers.Binary;
using SharpVisor.Devices.Tests.Virtio;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Hardening;

/// <summary>
/// Issue 17, item 5: when a completed virtio-blk write is durable. A driver that does not
/// negotiate VIRTIO_BLK_F_FLUSH assumes the disk has no volatile cache and never flushes, so in
/// Writeback mode (the default) every write, discard and write-zeroes is fdatasync'ed before it
/// completes; with FLUSH negotiated writes complete from the page cache and flushes make them
/// durable; Unsafe keeps the old behaviour (no sync without FLUSH).
/// </summary>
public sealed class WriteCacheTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"sharpvisor-cache-{Guid.NewGuid():N}.img");

    public WriteCacheTests()
    {
        File.WriteAllBytes(_path, new byte[1 << 20]);
    }

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void WithoutFlushNegotiatedEveryWriteIsSyncedBeforeItCompletes()
    {
        using var image = new RawDiskImage(_path);
        using var rig = new DeviceRig(p => new VirtioBlockDevice(p.Memory, image), featureMask: ~VirtioBlockDevice.FeatureFlush);
        var disk = (VirtioBlockDevice)rig.Device;
        Assert.False(disk.HasFeature(VirtioBlockDevice.FeatureFlush));
        Assert.True(disk.WriteThrough);

        for (int i = 1; i <= 3; i++)
        {
            Assert.Equal(VirtioBlockDevice.StatusOk, Submit(rig, VirtioBlockDevice.RequestOut, (ulong)i, fill: (byte)i));

            // The request is complete (used ring and status written) and its data was synced first.
            Assert.Equal(i, image.DataSyncs);
        }

        Assert.Equal(VirtioBlockDevice.StatusOk, SubmitWriteZeroes(rig, 1));
        Assert.Equal(4, image.DataSyncs);
        Assert.Equal(VirtioBlockDevice.StatusUnsupported, Submit(rig, VirtioBlockDevice.RequestFlush, 0, fill: null));
        Assert.Equal((byte)3, File.ReadAllBytes(_path)[3 * 512]);
    }

    [Fact]
    public void WithFlushNegotiatedWritesUseTheCacheAndFlushesAreHonoured()
    {
        using var image = new RawDiskImage(_path);
        using var rig = new DeviceRig(p => new VirtioBlockDevice(p.Memory, image));
        var disk = (VirtioBlockDevice)rig.Device;
        Assert.True(disk.HasFeature(VirtioBlockDevice.FeatureFlush));
        Assert.False(disk.WriteThrough);

        Assert.Equal(VirtioBlockDevice.StatusOk, Submit(rig, VirtioBlockDevice.RequestOut, 5, fill: 0x55));
        Assert.Equal(0, image.DataSyncs);
        Assert.Equal(VirtioBlockDevice.StatusOk, Submit(rig, VirtioBlockDevice.RequestFlush, 0, fill: null));
        Assert.Equal(0x55, File.ReadAllBytes(_path)[5 * 512]);
    }

    [Fact]
    public void UnsafeModeNeverSyncsWrites()
    {
        using var image = new RawDiskImage(_path);
        using var rig = new DeviceRig(p => new VirtioBlockDevice(p.Memory, image, cacheMode: DiskCacheMode.Unsafe), featureMask: ~VirtioBlockDevice.FeatureFlush);
        var disk = (VirtioBlockDevice)rig.Device;
        Assert.False(disk.WriteThrough);

        Assert.Equal(VirtioBlockDevice.StatusOk, Submit(rig, VirtioBlockDevice.RequestOut, 2, fill: 0x22));
        Assert.Equal(0, image.DataSyncs);
    }

    private static byte Submit(DeviceRig rig, uint type, ulong sector, byte? fill)
    {
        ulong header = DeviceRig.Data(0);
        ulong data = DeviceRig.Data(1);
        ulong status = DeviceRig.Data(2);
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, type);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], sector);
        rig.Platform.Memory.Write(header, bytes);
        rig.Platform.Memory.Write(status, (byte)0xEE);
        DriverRing ring = rig.Rings[0];
        ushort used = ring.UsedIndex;
        if (fill is byte value)
        {
            rig.Platform.Memory.Fill(data, 512, value);
            ring.AddChain((header, 16, false), (data, 512, false), (status, 1, true));
        }
        else
        {
            ring.AddChain((header, 16, false), (status, 1, true));
        }

        rig.Driver.Notify(0);
        Assert.Equal((ushort)(used + 1), ring.UsedIndex);
        return rig.Platform.Memory.Read<byte>(status);
    }

    private static byte SubmitWriteZeroes(DeviceRig rig, ulong sector)
    {
        ulong header = DeviceRig.Data(0);
        ulong segment = DeviceRig.Data(1);
        ulong status = DeviceRig.Data(2);
        rig.Platform.Memory.Write(header, VirtioBlockDevice.RequestWriteZeroes);
        rig.Platform.Memory.Write(header + 8, 0UL);
        rig.Platform.Memory.Write(segment, sector);
        rig.Platform.Memory.Write(segment + 8, 1u);
        rig.Platform.Memory.Write(segment + 12, 0u);
        DriverRing ring = rig.Rings[0];
        ushort used = ring.UsedIndex;
        ring.AddChain((header, 16, false), (segment, 16, false), (status, 1, true));
        rig.Driver.Notify(0);
        Assert.Equal((ushort)(used + 1), ring.UsedIndex);
        return rig.Platform.Memory.Read<byte>(status);
    }
}
