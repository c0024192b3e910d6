using System.Buffers.Binary;
using SharpVisor.Devices.Virtio;
using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>
/// The VMM's virtio devices seen from a guest driver the test plays in C#: enumeration through
/// ports 0xCF8/0xCFC, BAR sizing and moves, capabilities, queues in guest memory, notifications
/// through the MMIO bus, and the effects on the host — image bytes, MSI-X messages, INTx levels.
/// </summary>
public sealed class PciDeviceManagerTests : IDisposable
{
    private const uint RequestIn = 0;
    private const uint RequestOut = 1;
    private const uint RequestFlush = 4;

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void GuestEnumeratesEveryDeviceOnBus0InConfigurationOrder()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with
        {
            Disks = [new DiskConfiguration(Image("a.img")), new DiskConfiguration(Image("b.img"), ReadOnly: true)],
            Balloon = new BalloonConfiguration(),
            EntropyDevice = true,
        });

        var found = bench.Pci.Enumerate();

        Assert.Equal([(0, (ushort)0x8086, (byte)0x06), (1, (ushort)0x1AF4, (byte)0x01), (2, (ushort)0x1AF4, (byte)0x01), (3, (ushort)0x1AF4, (byte)0xFF), (4, (ushort)0x1AF4, (byte)0xFF)],
            found.Select(f => (f.Slot, f.Vendor, f.Class)));
        Assert.Equal([0x1042, 0x1042, 0x1045, 0x1044], found.Skip(1).Select(f => (int)f.Device));
        Assert.Equal(["disk0", "disk1", "balloon0", "rng0"], bench.Devices.Devices.Select(d => d.Name));

        // Every function's INTA# line is what the DSDT's _PRT says.
        foreach (var route in bench.Devices.AcpiRoutes().Where(r => r.Slot != 0))
        {
            Assert.Equal(1, bench.Pci.Read8(route.Slot, GuestPciBus.InterruptPin));
            Assert.Equal(route.Gsi, bench.Pci.Read8(route.Slot, GuestPciBus.InterruptLine));
            Assert.InRange(route.Gsi, 16u, 23u);
        }

        Assert.Equal(4, bench.Devices.AcpiRoutes().Count(r => r.Slot != 0));
    }

    [Fact]
    public void NamesAreUniquePerKindOfDevice()
    {
        // firecracker-go-sdk names its first drive "1" and its first NIC "1": different kinds may share a name.
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(Image("a.img"), Id: "1")] });
        Assert.Throws<ArgumentException>(() => bench.Devices.UpdateNetworkInterface("1", null, null));

        var e = Assert.Throws<ArgumentException>(() => new DeviceBench(DeviceBench.Configuration() with
        {
            Disks = [new DiskConfiguration(Image("b.img"), Id: "x"), new DiskConfiguration(Image("c.img"), Id: "x")],
        }));
        Assert.Equal("two block devices are named 'x'", e.Message);
    }

    [Fact]
    public void Bar0SizesAs32KibAndFollowsTheGuestWhenMoved()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(Image("a.img"))] });
        int slot = bench.Devices.Devices[0].Slot;

        (ulong size, bool is64) = bench.Pci.SizeBar(slot, 0);
        ulong placed = bench.Pci.BarAddress(slot, 0);

        Assert.Equal(0x8000UL, size);
        Assert.True(is64);
        Assert.InRange(placed, 0xC000_0000UL, 0xFEC0_0000UL - size);
        Assert.Equal(0UL, placed % size);

        bench.Pci.ProgramBar(slot, 0, 0xD000_0000);
        var driver = new GuestVirtioDevice(bench.Machine, bench.Pci, slot);

        Assert.Equal(0xD000_0000UL, driver.Bar);
        Assert.NotEqual(0UL, driver.ReadDeviceFeatures() & GuestVirtioDevice.Version1);
        Assert.Equal(0xFFFF_FFFFu, bench.Pci.Mmio32(placed + 4)); // the old place decodes nothing
        Assert.True(driver.HasCapability(1) && driver.HasCapability(2) && driver.HasCapability(3) && driver.HasCapability(4));
    }

    [Fact]
    public void DiskWriteAndReadThroughTheRingReachTheImageAndSignalMsix()
    {
        string image = Image("disk.img", 1 << 20);
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(image, Id: "data")] });
        GuestVirtioDevice driver = bench.Driver("data");
        driver.EnableMsix(2);
        driver.SetConfigVector(0);
        GuestRing ring = driver.SetupQueue(0, DeviceBench.Ring(0), 16, vector: 1);
        driver.SetDriverOk();

        byte[] pattern = Pattern(4096, 0x5A);
        bench.Machine.Memory.Write(DeviceBench.Data(1), pattern);
        Assert.Equal(0, Request(bench, driver, ring, RequestOut, sector: 8, DeviceBench.Data(1), 4096, writable: false));
        Assert.True(bench.Machine.RecordingInterrupts.WaitForMsi(GuestVirtioDevice.MsiDataBase + 1));
        Assert.Equal(pattern, File.ReadAllBytes(image).AsSpan(8 * 512, 4096).ToArray());

        // The host changes the image behind the guest's back; the guest reads the new bytes.
        using (FileStream file = File.OpenWrite(image))
        {
            file.Position = 64 * 512;
            file.Write(Pattern(1024, 0x33));
        }

        Assert.Equal(0, Request(bench, driver, ring, RequestIn, sector: 64, DeviceBench.Data(2), 1024, writable: true));
        byte[] read = new byte[1024];
        bench.Machine.Memory.Read(DeviceBench.Data(2), read);
        Assert.Equal(Pattern(1024, 0x33), read);

        Assert.All(bench.Machine.RecordingInterrupts.Msis, m => Assert.Equal(GuestVirtioDevice.MsiAddress, m.Address));
        VirtioIoCounters counters = bench.Devices.Devices[0].Device.IoCounters;
        Assert.Equal((1L, 1024L, 1L, 4096L), (counters.ReadRequests, counters.ReadBytes, counters.WriteRequests, counters.WriteBytes));
    }

    [Fact]
    public void PatchingARunningDiskSwapsItsImageAndTellsTheGuestTheNewCapacity()
    {
        string first = Image("first.img", 64 << 10);
        string second = Image("second.img", 128 << 10);
        File.WriteAllBytes(second, Pattern(128 << 10, 0x77));
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(first, Id: "rootfs")] });
        GuestVirtioDevice driver = bench.Driver("rootfs");
        driver.EnableMsix(2);
        driver.SetConfigVector(0);
        GuestRing ring = driver.SetupQueue(0, DeviceBench.Ring(0), 16, vector: 1);
        driver.SetDriverOk();
        Assert.Equal(128u, driver.ReadConfig32(0)); // capacity in sectors

        Assert.Throws<IOException>(() => bench.Devices.UpdateDisk("rootfs", _directory.File("missing.img"), null));
        Assert.Equal(128u, driver.ReadConfig32(0)); // a file that cannot be opened changes nothing

        bench.Devices.UpdateDisk("rootfs", second, new RateLimitConfiguration(null, new TokenBucketConfiguration(100, 0, 1000)));
        Assert.Equal(256u, driver.ReadConfig32(0));
        Assert.True(bench.Machine.RecordingInterrupts.WaitForMsi(GuestVirtioDevice.MsiDataBase + 0), "the configuration-change interrupt");
        Assert.Equal(0, Request(bench, driver, ring, RequestIn, sector: 200, DeviceBench.Data(2), 512, writable: true));
        byte[] read = new byte[512];
        bench.Machine.Memory.Read(DeviceBench.Data(2), read);
        Assert.Equal(Pattern(128 << 10, 0x77).AsSpan(200 * 512, 512).ToArray(), read);
        Assert.NotNull(((VirtioBlockDevice)bench.Devices.Devices[0].Device).RateLimiter);
        Assert.Throws<ArgumentException>(() => bench.Devices.UpdateDisk("nope", second, null));
    }

    [Fact]
    public void ReadOnlyDiskAnswersIoErrorAndTheImageStaysUnchanged()
    {
        string image = Image("ro.img", 64 << 10);
        byte[] before = File.ReadAllBytes(image);
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(image, ReadOnly: true)] });
        GuestVirtioDevice driver = bench.Driver("disk0", VirtioBlockDevice.FeatureReadOnly);
        GuestRing ring = driver.SetupQueue(0, DeviceBench.Ring(0), 16);
        driver.SetDriverOk();

        bench.Machine.Memory.Write(DeviceBench.Data(1), Pattern(512, 1));

        Assert.Equal(1, Request(bench, driver, ring, RequestOut, sector: 0, DeviceBench.Data(1), 512, writable: false));
        Assert.Equal(before, File.ReadAllBytes(image));
        Assert.Equal(0, Request(bench, driver, ring, RequestIn, sector: 0, DeviceBench.Data(2), 512, writable: true));
    }

    [Fact]
    public void FlushIsServedAndCountedAsAWrite()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(Image("f.img"))] });
        GuestVirtioDevice driver = bench.Driver("disk0", VirtioBlockDevice.FeatureFlush);
        GuestRing ring = driver.SetupQueue(0, DeviceBench.Ring(0), 16);
        driver.SetDriverOk();

        Assert.Equal(0, Request(bench, driver, ring, RequestFlush, sector: 0, 0, 0, writable: false));
        Assert.Equal(1, bench.Devices.Devices[0].Device.IoCounters.WriteRequests);
    }

    [Fact]
    public void WithoutMsixTheQueueInterruptIsIntxOnTheGsiThePrtNames()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(Image("i.img"))] });
        GuestVirtioDevice driver = bench.Driver("disk0");
        GuestRing ring = driver.SetupQueue(0, DeviceBench.Ring(0), 16);
        driver.SetDriverOk();
        uint gsi = bench.Devices.AcpiRoutes().Single(r => r.Slot == driver.Slot).Gsi;

        Assert.Equal(0, Request(bench, driver, ring, RequestIn, sector: 1, DeviceBench.Data(1), 512, writable: true));

        Assert.True(bench.Machine.RecordingInterrupts.WaitForLevel(gsi, asserted: true));
        Assert.Equal(1, driver.ReadIsr());
        Assert.False(bench.Machine.RecordingInterrupts.IsAsserted(gsi));
        Assert.Empty(bench.Machine.RecordingInterrupts.Msis);
    }

    [Fact]
    public void ABrokenRingFailsOnlyThatDeviceWithALoggedReason()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with
        {
            Disks = [new DiskConfiguration(Image("bad.img"), Id: "victim"), new DiskConfiguration(Image("good.img"), Id: "bystander")],
        });
        GuestVirtioDevice victim = bench.Driver("victim");
        victim.EnableMsix(2);
        victim.SetConfigVector(0);
        GuestRing badRing = victim.SetupQueue(0, DeviceBench.Ring(0), 16, vector: 1);
        victim.SetDriverOk();
        GuestVirtioDevice bystander = bench.Driver("bystander");
        GuestRing goodRing = bystander.SetupQueue(0, DeviceBench.Ring(1), 16);
        bystander.SetDriverOk();

        // A data buffer far outside the 64 MiB of guest RAM.
        ulong header = DeviceBench.Data(10);
        WriteHeader(bench, header, RequestIn, 0);
        badRing.AddChain((header, 16, false), (0x7_0000_0000, 512, true), (header + 16, 1, true));
        victim.Notify(0);

        Assert.True(bench.Machine.RecordingInterrupts.WaitForMsi(GuestVirtioDevice.MsiDataBase + 0), "no configuration-change interrupt");
        Assert.NotEqual(0, victim.Status & GuestVirtioDevice.NeedsReset);
        Assert.Contains(bench.LogLines(), l => l.StartsWith("victim: ", StringComparison.Ordinal) && l.Contains("needs reset"));
        Assert.Equal(0, Request(bench, bystander, goodRing, RequestIn, sector: 0, DeviceBench.Data(1), 512, writable: true));

        // The driver resets the device and it works again.
        victim = bench.Driver("victim");
        badRing = victim.SetupQueue(0, DeviceBench.Ring(2), 16);
        victim.SetDriverOk();
        Assert.Equal(0, Request(bench, victim, badRing, RequestIn, sector: 0, DeviceBench.Data(1), 512, writable: true));
    }

    [Fact]
    public void RegisteredDoorbellsFollowBar0AndWakeTheDevice()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Disks = [new DiskConfiguration(Image("d.img"))] });
        int slot = bench.Devices.Devices[0].Slot;
        Assert.Empty(bench.Machine.IoEventFds); // memory decoding is off until the guest turns it on

        GuestVirtioDevice driver = bench.Driver("disk0");
        ulong notify = driver.NotifyAddress(0);
        Assert.Equal([notify], bench.Machine.IoEventFds.Keys);
        Assert.Equal([notify], bench.Devices.IoEventFdAddresses("disk0"));

        bench.Pci.ProgramBar(slot, 0, 0xE000_0000);
        ulong moved = driver.NotifyAddress(0);
        Assert.Equal(0xE000_3000UL, moved);
        Assert.Equal([moved], bench.Machine.IoEventFds.Keys);

        // Play KVM: the guest's notify write signals the eventfd and never reaches the MMIO bus.
        GuestRing ring = driver.SetupQueue(0, DeviceBench.Ring(0), 16);
        driver.SetDriverOk();
        ulong header = DeviceBench.Data(10);
        WriteHeader(bench, header, RequestIn, 0);
        ring.AddChain((header, 16, false), (DeviceBench.Data(1), 512, true), (header + 16, 1, true));
        bench.Machine.IoEventFds[moved].Signal();
        Assert.NotNull(ring.WaitUsed());
        Assert.Equal(0, bench.Machine.Memory.Read<byte>(header + 16));
    }

    [Fact]
    public void BalloonTargetReachesTheGuestAndInflatedPagesAreReleased()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { Balloon = new BalloonConfiguration { InitialTargetMib = 4 } });
        GuestVirtioDevice driver = bench.Driver("balloon0");
        driver.EnableMsix(4);
        driver.SetConfigVector(0);
        GuestRing inflate = driver.SetupQueue(0, DeviceBench.Ring(0), 16, vector: 1);
        driver.SetDriverOk();
        Assert.Equal(4u * 256, driver.ReadConfig32(0)); // num_pages at boot

        bench.Devices.SetBalloonTarget(8);
        Assert.True(bench.Machine.RecordingInterrupts.WaitForMsi(GuestVirtioDevice.MsiDataBase + 0), "no configuration-change interrupt");
        Assert.Equal(8u * 256, driver.ReadConfig32(0));

        // The guest hands back 16 pages it had filled, and reports its new size.
        ulong pages = 0x80_0000;
        bench.Machine.Memory.Fill(pages, 16 * 4096, 0xEE);
        ulong pfns = DeviceBench.Data(0);
        for (uint i = 0; i < 16; i++)
        {
            bench.Machine.Memory.Write(pfns + (4 * i), (uint)(pages >> 12) + i);
        }

        inflate.AddChain((pfns, 64, false));
        driver.Notify(0);
        Assert.NotNull(inflate.WaitUsed());
        bench.Pci.MmioWrite32(driver.DeviceConfig + 4, 16);

        VirtioBalloonDevice balloon = bench.Devices.Balloon!;
        Assert.Equal(16, balloon.BalloonedPages);
        Assert.Equal(16u, balloon.ActualPages);
        Assert.Equal(0, bench.Machine.Memory.Read<byte>(pages + 4096)); // given back: reads as zeros

        Assert.Throws<ArgumentOutOfRangeException>(() => bench.Devices.SetBalloonTarget(65));
    }

    [Fact]
    public void EntropyDeviceFillsTheGuestBuffer()
    {
        using var bench = new DeviceBench(DeviceBench.Configuration() with { EntropyDevice = true });
        GuestVirtioDevice driver = bench.Driver("rng0");
        GuestRing ring = driver.SetupQueue(0, DeviceBench.Ring(0), 16);
        driver.SetDriverOk();
        bench.Machine.Memory.Fill(DeviceBench.Data(1), 256, 0);

        ring.AddChain((DeviceBench.Data(1), 256, true));
        driver.Notify(0);

        Assert.Equal(256u, ring.WaitUsed()!.Value.Length);
        byte[] random = new byte[256];
        bench.Machine.Memory.Read(DeviceBench.Data(1), random);
        Assert.True(random.Distinct().Count() > 64, "the buffer does not look random");
        Assert.Equal(256, bench.Devices.Devices[0].Device.IoCounters.ReadBytes);
    }

    [Fact]
    public void VirtioConsoleWritesTheGuestOutputToItsStream()
    {
        using var output = new MemoryStream();
        using var bench = new DeviceBench(DeviceBench.Configuration() with { VirtioConsoleOutput = output });
        GuestVirtioDevice driver = bench.Driver("console0");
        driver.SetupQueue(0, DeviceBench.Ring(0), 16);
        GuestRing transmit = driver.SetupQueue(1, DeviceBench.Ring(1), 16);
        driver.SetDriverOk();
        bench.Machine.Memory.Write(DeviceBench.Data(1), "hello hvc0\n"u8.ToArray());

        transmit.AddChain((DeviceBench.Data(1), 11, false));
        driver.Notify(1);

        Assert.NotNull(transmit.WaitUsed());
        Assert.Equal("hello hvc0\n", System.Text.Encoding.ASCII.GetString(output.ToArray()));
    }

    /// <summary>Sends one block request (header, optional data, status) and waits for it; returns the status byte.</summary>
    private static int Request(DeviceBench bench, GuestVirtioDevice driver, GuestRing ring, uint type, ulong sector, ulong data, uint length, bool writable)
    {
        ulong header = DeviceBench.Data(20 + (ring.UsedIndex % 8));
        WriteHeader(bench, header, type, sector);
        bench.Machine.Memory.Write(header + 16, (byte)0xFF);
        if (length > 0)
        {
            ring.AddChain((header, 16, false), (data, length, writable), (header + 16, 1, true));
        }
        else
        {
            ring.AddChain((header, 16, false), (header + 16, 1, true));
        }

        driver.Notify(0);
        Assert.True(ring.WaitUsed() is not null, "the disk did not complete the request");
        return bench.Machine.Memory.Read<byte>(header + 16);
    }

    private static void WriteHeader(DeviceBench bench, ulong at, uint type, ulong sector)
    {
        Span<byte> header = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(header, type);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], sector);
        bench.Machine.Memory.Write(at, header.ToArray());
    }

    private static byte[] Pattern(int length, byte seed) => Enumerable.Range(0, length).Select(i => (byte)(seed + (i * 7))).ToArray();

    private string Image(string name, int size = 64 << 10) => _directory.CreateFile(name, size);
}
