using System.Buffers.Binary;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Virtio;

public sealed class SmallDeviceTests
{
    [Fact]
    public void RngFillsWritableBuffersWithFreshRandomBytes()
    {
        using var rig = new DeviceRig(p => new VirtioRngDevice(p.Memory));
        Assert.Equal(0x1044, rig.Platform.ConfigRead16(rig.Driver.Slot, 2));
        ulong a = DeviceRig.Data(0);
        ulong b = DeviceRig.Data(1);
        ushort head = rig.Rings[0].AddChain((a, 100, true), (a + 0x800, 28, true));
        rig.Rings[0].AddChain((b, 128, true));
        rig.Driver.Notify(0);
        Assert.Equal(2, rig.Rings[0].UsedIndex);
        Assert.Equal((head, 128u), rig.Rings[0].Used(0));
        byte[] first = rig.Platform.Memory.GetSpan(a, 100).ToArray();
        byte[] second = rig.Platform.Memory.GetSpan(b, 100).ToArray();
        Assert.NotEqual(first, second);
        Assert.True(first.Distinct().Count() > 50, "100 random bytes should hold many distinct values");
    }

    [Fact]
    public void RngCapsOneRequest()
    {
        using var rig = new DeviceRig(p => new VirtioRngDevice(p.Memory));
        rig.Rings[0].AddChain((DeviceRig.Data(0), 1 << 20, true));
        rig.Driver.Notify(0);
        Assert.Equal((uint)VirtioRngDevice.MaxBytesPerRequest, rig.Rings[0].Used(0).Length);
    }

    [Fact]
    public void ConsoleTransmitsToTheHostStream()
    {
        var output = new MemoryStream();
        using var rig = new DeviceRig(p => new VirtioConsoleDevice(p.Memory, output));
        Assert.Equal(0x1043, rig.Platform.ConfigRead16(rig.Driver.Slot, 2));
        Assert.Equal(1u, rig.Driver.Read32(rig.Driver.DeviceConfig + 4)); // max_nr_ports
        rig.Platform.Memory.Write(DeviceRig.Data(0), "Linux version"u8);
        rig.Platform.Memory.Write(DeviceRig.Data(1), " 6.1\n"u8);
        rig.Rings[1].AddChain((DeviceRig.Data(0), 13, false), (DeviceRig.Data(1), 5, false));
        rig.Driver.Notify(1);
        Assert.Equal("Linux version 6.1\n", System.Text.Encoding.ASCII.GetString(output.ToArray()));
        Assert.Equal(0u, rig.Rings[1].Used(0).Length);

        rig.Driver.Write8(rig.Driver.DeviceConfig + 8, (byte)'!'); // emergency write
        Assert.EndsWith("!", System.Text.Encoding.ASCII.GetString(output.ToArray()));
    }

    [Fact]
    public void ConsoleSurvivesABrokenHostStream()
    {
        using var rig = new DeviceRig(p => new VirtioConsoleDevice(p.Memory, new BrokenStream()));
        rig.Rings[1].AddChain((DeviceRig.Data(0), 10, false));
        rig.Driver.Notify(1);
        Assert.Equal(1, rig.Rings[1].UsedIndex);
        Assert.False(rig.Device.NeedsReset);
        Assert.Equal(10, ((VirtioConsoleDevice)rig.Device).DroppedOutputBytes);
    }

    [Fact]
    public void ConsoleInputWaitsForReceiveBuffersAndSplitsAcrossThem()
    {
        using var rig = new DeviceRig(p => new VirtioConsoleDevice(p.Memory, Stream.Null));
        var console = (VirtioConsoleDevice)rig.Device;
        console.EnqueueInput("ls -l\n"u8);
        Assert.Equal(6, console.PendingInput);

        rig.Rings[0].AddChain((DeviceRig.Data(0), 4, true));
        rig.Rings[0].AddChain((DeviceRig.Data(1), 64, true));
        rig.Driver.Notify(0);
        Assert.Equal(2, rig.Rings[0].UsedIndex);
        Assert.Equal(4u, rig.Rings[0].Used(0).Length);
        Assert.Equal(2u, rig.Rings[0].Used(1).Length);
        Assert.Equal("ls -"u8.ToArray(), rig.Platform.Memory.GetSpan(DeviceRig.Data(0), 4).ToArray());
        Assert.Equal("l\n"u8.ToArray(), rig.Platform.Memory.GetSpan(DeviceRig.Data(1), 2).ToArray());

        // A buffer posted while no input is pending stays with the device until input arrives.
        rig.Rings[0].AddChain((DeviceRig.Data(2), 64, true));
        rig.Driver.Notify(0);
        Assert.Equal(2, rig.Rings[0].UsedIndex);
        console.EnqueueInput("x"u8);
        Assert.Equal(3, rig.Rings[0].UsedIndex);
        Assert.Equal((byte)'x', rig.Platform.Memory.Read<byte>(DeviceRig.Data(2)));
    }

    [Fact]
    public void BalloonInflateReturnsPagesToTheHostAndDeflateCountsThemBack()
    {
        using var rig = new DeviceRig(p => new VirtioBalloonDevice(p.Memory));
        var balloon = (VirtioBalloonDevice)rig.Device;
        Assert.Equal(0x1045, rig.Platform.ConfigRead16(rig.Driver.Slot, 2));

        balloon.SetTargetPages(3);
        Assert.Equal(3u, rig.Driver.Read32(rig.Driver.DeviceConfig));
        Assert.Equal(VirtioPciDevice.IsrConfig, rig.Driver.ReadIsr());

        // The guest picks three pages (two adjacent), fills them as a real guest would have, and inflates.
        uint[] pfns = [0x800, 0x801, 0x900];
        foreach (uint pfn in pfns.Append(0x802u))
        {
            rig.Platform.Memory.Fill((ulong)pfn << 12, 4096, 0xAA);
        }

        ulong list = DeviceRig.Data(0);
        for (int i = 0; i < pfns.Length; i++)
        {
            rig.Platform.Memory.Write(list + (ulong)(4 * i), pfns[i]);
        }

        rig.Rings[VirtioBalloonDevice.InflateQueue].AddChain((list, 12, false));
        rig.Driver.Notify(VirtioBalloonDevice.InflateQueue);
        Assert.Equal(1, rig.Rings[VirtioBalloonDevice.InflateQueue].UsedIndex);
        Assert.Equal(3, balloon.BalloonedPages);
        foreach (uint pfn in pfns)
        {
            Assert.All(rig.Platform.Memory.GetSpan((ulong)pfn << 12, 4096).ToArray(), b => Assert.Equal(0, b));
        }

        Assert.Equal(0xAA, rig.Platform.Memory.Read<byte>(0x802000)); // the neighbour keeps its data

        rig.Driver.Write32(rig.Driver.DeviceConfig + 4, 3); // the guest reports "actual"
        Assert.Equal(3u, balloon.ActualPages);

        rig.Platform.Memory.Write(list, 0x900u);
        rig.Rings[VirtioBalloonDevice.DeflateQueue].AddChain((list, 4, false));
        rig.Driver.Notify(VirtioBalloonDevice.DeflateQueue);
        Assert.Equal(2, balloon.BalloonedPages);
    }

    [Fact]
    public void BalloonIgnoresFramesOutsideGuestMemory()
    {
        using var rig = new DeviceRig(p => new VirtioBalloonDevice(p.Memory));
        var balloon = (VirtioBalloonDevice)rig.Device;
        rig.Platform.Memory.Write(DeviceRig.Data(0), 0xFFFF_FFFFu);
        rig.Platform.Memory.Write(DeviceRig.Data(0) + 4, 0xC0000u); // the MMIO hole at 3 GiB
        rig.Rings[0].AddChain((DeviceRig.Data(0), 8, false));
        rig.Driver.Notify(0);
        Assert.Equal(2, balloon.InvalidPages);
        Assert.Equal(0, balloon.BalloonedPages);
        Assert.False(balloon.NeedsReset);
    }

    [Fact]
    public void BalloonStatisticsAreHeldUntilTheHostAsksAgain()
    {
        using var rig = new DeviceRig(p => new VirtioBalloonDevice(p.Memory));
        var balloon = (VirtioBalloonDevice)rig.Device;
        Assert.NotEqual(0UL, balloon.DriverFeatures & VirtioBalloonDevice.FeatureStatsQueue);
        Assert.False(balloon.RequestStatistics());

        ulong buffer = DeviceRig.Data(0);
        byte[] stats = new byte[20];
        BinaryPrimitives.WriteUInt16LittleEndian(stats, 4); // VIRTIO_BALLOON_S_MEMFREE
        BinaryPrimitives.WriteUInt64LittleEndian(stats.AsSpan(2), 123456789);
        BinaryPrimitives.WriteUInt16LittleEndian(stats.AsSpan(10), 5); // VIRTIO_BALLOON_S_MEMTOT
        BinaryPrimitives.WriteUInt64LittleEndian(stats.AsSpan(12), 987654321);
        rig.Platform.Memory.Write(buffer, stats);
        DriverRing ring = rig.Rings[VirtioBalloonDevice.StatsQueue];
        ushort head = ring.AddChain((buffer, 20, false));
        rig.Driver.Notify(VirtioBalloonDevice.StatsQueue);
        Assert.Equal(0, ring.UsedIndex);
        Assert.Equal(123456789UL, balloon.Statistics[4]);
        Assert.Equal(987654321UL, balloon.Statistics[5]);

        Assert.True(balloon.RequestStatistics());
        Assert.Equal(1, ring.UsedIndex);
        Assert.Equal(head, (ushort)ring.Used(0).Id);
        Assert.False(balloon.RequestStatistics());
    }

    [Fact]
    public void BalloonOffersDeflateOnOom()
    {
        using var rig = new DeviceRig(p => new VirtioBalloonDevice(p.Memory));
        Assert.NotEqual(0UL, rig.Device.DeviceFeatures & VirtioBalloonDevice.FeatureDeflateOnOom);
        Assert.Equal(0UL, rig.Device.DeviceFeatures & 1UL); // no MUST_TELL_HOST: deflated pages are usable at once
    }

    private sealed class BrokenStream : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => 0;

        public override long Position { get => 0; set { } }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("Broken pipe");
    }
}
