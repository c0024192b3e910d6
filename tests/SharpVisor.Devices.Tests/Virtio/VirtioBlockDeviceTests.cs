using System.Buffers.Binary;
using SharpVisor.Devices.Tests.Pci;
using SharpVisor.Devices.Virtio;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Tests.Virtio;

public sealed class VirtioBlockDeviceTests : IDisposable
{
    private const ulong Ring = 0x1_0000;
    private const ulong Header = 0x10_0000;
    private const ulong Buffer = 0x11_0000;
    private const ulong Status = 0x20_0000;
    private const int ImageSectors = 2048; // 1 MiB

    private readonly string _path = Path.Combine(Path.GetTempPath(), $"sharpvisor-blk-{Guid.NewGuid():N}.img");
    private readonly TestPlatform _p = new();
    private RawDiskImage? _image;
    private VirtioBlockDevice? _device;
    private VirtioPciTestDriver? _driver;
    private DriverRing? _ring;

    public VirtioBlockDeviceTests()
    {
        byte[] content = new byte[ImageSectors * 512];
        for (int s = 0; s < ImageSectors; s++)
        {
            OriginalSector(s).CopyTo(content, s * 512);
        }

        File.WriteAllBytes(_path, content);
    }

    public void Dispose()
    {
        _device?.Dispose();
        _image?.Dispose();
        _p.Dispose();
        File.Delete(_path);
    }

    private void Start(bool readOnly = false, ulong extraFeatures = ulong.MaxValue)
    {
        _image = new RawDiskImage(_path, readOnly);
        _device = new VirtioBlockDevice(_p.Memory, _image, serial: "SV-DISK-0001");
        int slot = _p.Pci.Attach(new VirtioPciDevice(_device));
        _driver = new VirtioPciTestDriver(_p, slot);
        ulong features = _driver.ReadDeviceFeatures() & extraFeatures;
        Assert.True(_driver.Negotiate(features));
        _ring = _driver.SetupQueue(0, Ring, 64);
        _driver.DriverOk();
    }

    private (byte Status, uint Written) Submit(uint type, ulong sector, int dataLength, bool deviceWrites, params (ulong Address, uint Length, bool Writable)[] extra)
    {
        Span<byte> header = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(header, type);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], sector);
        _p.Memory.Write(Header, header);
        _p.Memory.Write(Status, (byte)0xEE);
        var buffers = new List<(ulong, uint, bool)> { (Header, 16, false) };
        buffers.AddRange(extra);
        if (dataLength > 0)
        {
            buffers.Add((Buffer, (uint)dataLength, deviceWrites));
        }

        buffers.Add((Status, 1, true));
        ushort used = _ring!.UsedIndex;
        ushort head = _ring.AddChain(buffers.ToArray());
        _driver!.Notify(0);
        Assert.Equal((ushort)(used + 1), _ring.UsedIndex);
        (uint id, uint written) = _ring.Used(used);
        Assert.Equal(head, id);
        return (_p.Memory.Read<byte>(Status), written);
    }

    private static byte[] OriginalSector(int sector) =>
        Enumerable.Range(sector * 512, 512).Select(i => (byte)((i / 512) ^ (i % 251))).ToArray();

    private byte[] FileSector(long sector, int count = 1)
    {
        using FileStream f = File.OpenRead(_path);
        f.Position = sector * 512;
        byte[] data = new byte[count * 512];
        f.ReadExactly(data);
        return data;
    }

    [Fact]
    public void ConfigReportsCapacityBlockSizeAndSegMax()
    {
        Start();
        Assert.Equal((ulong)ImageSectors, _driver!.Read64(_driver.DeviceConfig));
        Assert.Equal(254u, _driver.Read32(_driver.DeviceConfig + 12));
        Assert.Equal(512u, _driver.Read32(_driver.DeviceConfig + 20));
        ulong features = _device!.DeviceFeatures;
        Assert.NotEqual(0UL, features & VirtioBlockDevice.FeatureFlush);
        Assert.NotEqual(0UL, features & VirtioBlockDevice.FeatureDiscard);
        Assert.Equal(0UL, features & VirtioBlockDevice.FeatureReadOnly);
    }

    [Fact]
    public void ReadsSectorsIntoGuestMemory()
    {
        Start();
        (byte status, uint written) = Submit(VirtioBlockDevice.RequestIn, 10, 3 * 512, deviceWrites: true);
        Assert.Equal(VirtioBlockDevice.StatusOk, status);
        Assert.Equal(3u * 512 + 1, written);
        Assert.Equal(FileSector(10, 3), _p.Memory.GetSpan(Buffer, 3 * 512).ToArray());
    }

    [Fact]
    public void ReadsScatteredOverManyDescriptorsAndIndirectTables()
    {
        Start();
        Span<byte> header = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], 4);
        _p.Memory.Write(Header, header);
        ushort head = _ring!.AddIndirect(0x30_0000, (Header, 4, false), (Header + 4, 12, false), (Buffer, 100, true), (Buffer + 0x1000, 924, true), (Status, 1, true));
        _driver!.Notify(0);
        Assert.Equal((head, 1025u), _ring.Used(0));
        byte[] expected = FileSector(4, 2);
        Assert.Equal(expected[..100], _p.Memory.GetSpan(Buffer, 100).ToArray());
        Assert.Equal(expected[100..], _p.Memory.GetSpan(Buffer + 0x1000, 924).ToArray());
        Assert.Equal(0, _p.Memory.Read<byte>(Status));
    }

    [Fact]
    public void WritesReachTheImageFile()
    {
        Start();
        byte[] data = Enumerable.Range(0, 1024).Select(i => (byte)(i * 7)).ToArray();
        _p.Memory.Write(Buffer, data);
        (byte status, uint written) = Submit(VirtioBlockDevice.RequestOut, 100, 1024, deviceWrites: false);
        Assert.Equal(VirtioBlockDevice.StatusOk, status);
        Assert.Equal(1u, written);
        Assert.Equal(data, FileSector(100, 2));
        Assert.Equal(OriginalSector(99), FileSector(99)); // neighbours untouched
        Assert.Equal(OriginalSector(102), FileSector(102));
    }

    [Fact]
    public void FlushSucceeds()
    {
        Start();
        Assert.Equal(VirtioBlockDevice.StatusOk, Submit(VirtioBlockDevice.RequestFlush, 0, 0, false).Status);
    }

    [Fact]
    public void FlushIsUnsupportedWhenNotNegotiated()
    {
        Start(extraFeatures: ~VirtioBlockDevice.FeatureFlush);
        Assert.Equal(VirtioBlockDevice.StatusUnsupported, Submit(VirtioBlockDevice.RequestFlush, 0, 0, false).Status);
    }

    [Fact]
    public void GetIdReturnsTheSerial()
    {
        Start();
        (byte status, uint written) = Submit(VirtioBlockDevice.RequestGetId, 0, 20, deviceWrites: true);
        Assert.Equal(VirtioBlockDevice.StatusOk, status);
        Assert.Equal(21u, written);
        Assert.Equal("SV-DISK-0001\0\0\0\0\0\0\0\0"u8.ToArray(), _p.Memory.GetSpan(Buffer, 20).ToArray());
    }

    [Fact]
    public void DiscardAndWriteZeroesClearTheRange()
    {
        Start();
        Span<byte> segment = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(segment, 8);
        BinaryPrimitives.WriteUInt32LittleEndian(segment[8..], 16);
        _p.Memory.Write(Buffer, segment);
        Assert.Equal(VirtioBlockDevice.StatusOk, Submit(VirtioBlockDevice.RequestDiscard, 0, 16, deviceWrites: false).Status);
        Assert.All(FileSector(8, 16), b => Assert.Equal(0, b));
        Assert.NotEqual(new byte[512], FileSector(24));

        BinaryPrimitives.WriteUInt64LittleEndian(segment, 40);
        BinaryPrimitives.WriteUInt32LittleEndian(segment[8..], 3);
        BinaryPrimitives.WriteUInt32LittleEndian(segment[12..], 0);
        _p.Memory.Write(Buffer, segment);
        Assert.Equal(VirtioBlockDevice.StatusOk, Submit(VirtioBlockDevice.RequestWriteZeroes, 0, 16, deviceWrites: false).Status);
        Assert.All(FileSector(40, 3), b => Assert.Equal(0, b));

        // Discard with the unmap flag is reserved: unsupported.
        BinaryPrimitives.WriteUInt32LittleEndian(segment[12..], 1);
        _p.Memory.Write(Buffer, segment);
        Assert.Equal(VirtioBlockDevice.StatusUnsupported, Submit(VirtioBlockDevice.RequestDiscard, 0, 16, deviceWrites: false).Status);
        Assert.Equal(ImageSectors * 512L, new FileInfo(_path).Length);
    }

    [Fact]
    public void RequestsBeyondCapacityGetIoErrorAndTouchNothing()
    {
        Start();
        _p.Memory.Fill(Buffer, 1024, 0xAB);
        Assert.Equal(VirtioBlockDevice.StatusIoError, Submit(VirtioBlockDevice.RequestIn, ImageSectors - 1, 1024, deviceWrites: true).Status);
        Assert.Equal(0xAB, _p.Memory.Read<byte>(Buffer));
        Assert.Equal(VirtioBlockDevice.StatusIoError, Submit(VirtioBlockDevice.RequestOut, ImageSectors, 512, deviceWrites: false).Status);
        Assert.Equal(VirtioBlockDevice.StatusIoError, Submit(VirtioBlockDevice.RequestOut, ulong.MaxValue, 512, deviceWrites: false).Status);
        Assert.Equal(VirtioBlockDevice.StatusIoError, Submit(VirtioBlockDevice.RequestIn, 0, 100, deviceWrites: true).Status); // not whole sectors
        Assert.Equal(ImageSectors * 512L, new FileInfo(_path).Length);

        Span<byte> segment = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(segment, ImageSectors - 2);
        BinaryPrimitives.WriteUInt32LittleEndian(segment[8..], 4);
        _p.Memory.Write(Buffer, segment);
        Assert.Equal(VirtioBlockDevice.StatusIoError, Submit(VirtioBlockDevice.RequestDiscard, 0, 16, deviceWrites: false).Status);
        Assert.False(_device!.NeedsReset);
    }

    [Fact]
    public void UnknownRequestTypesAreUnsupported()
    {
        Start();
        Assert.Equal(VirtioBlockDevice.StatusUnsupported, Submit(99, 0, 0, false).Status);
    }

    [Fact]
    public void ShortHeaderGetsIoError()
    {
        Start();
        ushort head = _ring!.AddChain((Header, 8, false), (Status, 1, true));
        _driver!.Notify(0);
        Assert.Equal((head, 1u), _ring.Used(0));
        Assert.Equal(VirtioBlockDevice.StatusIoError, _p.Memory.Read<byte>(Status));
    }

    /// <summary>Kernel protection (docs/security.md): a disk read (DMA) into the guest's locked kernel is refused and reported.</summary>
    [Fact]
    public void AReadIntoProtectedGuestMemoryIsRefusedAndTheMemoryUnchanged()
    {
        Start();
        var monitor = new DmaMonitor();
        var map = new SharpVisor.Machine.Protection.ProtectionMap(monitor, enforce: true);
        Assert.True(map.Lock([new(Buffer + 0x1000, Buffer + 0x2000)], [], SharpVisor.Machine.Protection.RegisterPins.None));
        _p.Memory.DeviceWriteGuard = map;
        _p.Memory.Fill(Buffer, 0x2000, 0x5A);

        _ring!.AddChain((Header, 16, false), (Buffer, 0x2000, true), (Status, 1, true));
        _driver!.Notify(0);

        Assert.True(_device!.NeedsReset);
        Assert.Contains("protected guest memory", _device.FailureReason);
        Assert.All(_p.Memory.GetSpan(Buffer, 0x2000).ToArray(), b => Assert.Equal(0x5A, b));
        var v = Assert.Single(monitor.Violations);
        Assert.Equal(SharpVisor.Machine.Protection.ProtectionViolationKind.DeviceWrite, v.Kind);
        Assert.Equal(Buffer, v.Target);
    }

    private sealed class DmaMonitor : SharpVisor.Machine.Protection.IProtectionMonitor
    {
        public List<SharpVisor.Machine.Protection.ProtectionViolation> Violations { get; } = new();

        public void OnUserModeEntered(SharpVisor.Machine.Protection.IProtectionLockContext context)
        {
        }

        public void OnViolation(in SharpVisor.Machine.Protection.ProtectionViolation violation) => Violations.Add(violation);
    }

    [Fact]
    public void ARequestWithoutAStatusByteFailsTheDevice()
    {
        Start();
        _ring!.AddChain((Header, 16, false));
        _driver!.Notify(0);
        Assert.True(_device!.NeedsReset);
        Assert.Equal(0, _ring.UsedIndex);
        Assert.Contains("status byte", _device.FailureReason);
    }

    [Fact]
    public void ReadOnlyDisksOfferRoAndRefuseWrites()
    {
        Start(readOnly: true);
        Assert.NotEqual(0UL, _device!.DriverFeatures & VirtioBlockDevice.FeatureReadOnly);
        Assert.Equal(0UL, _device.DeviceFeatures & (VirtioBlockDevice.FeatureDiscard | VirtioBlockDevice.FeatureWriteZeroes));
        byte[] before = FileSector(0);
        _p.Memory.Fill(Buffer, 512, 0x11);
        Assert.Equal(VirtioBlockDevice.StatusIoError, Submit(VirtioBlockDevice.RequestOut, 0, 512, deviceWrites: false).Status);
        Assert.Equal(before, FileSector(0));
        Assert.Equal(VirtioBlockDevice.StatusUnsupported, Submit(VirtioBlockDevice.RequestDiscard, 0, 16, deviceWrites: false).Status);
        Assert.Equal(VirtioBlockDevice.StatusOk, Submit(VirtioBlockDevice.RequestIn, 0, 512, deviceWrites: true).Status);
    }

    [Fact]
    public void TheWorkerThreadServesRequestsFromManyNotifications()
    {
        Start();
        _device!.StartWorker();
        for (int i = 0; i < 16; i++)
        {
            ulong header = Header + (ulong)(32 * i);
            _p.Memory.Write(header, VirtioBlockDevice.RequestIn);
            _p.Memory.Write(header + 8, (ulong)(100 + i));
            _ring!.AddChain((header, 16, false), (Buffer + (ulong)(512 * i), 512, true), (Status + (ulong)i, 1, true));
            _driver!.Notify(0);
        }

        Assert.True(SpinWait.SpinUntil(() => _ring!.UsedIndex == 16, TimeSpan.FromSeconds(10)));
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(0, _p.Memory.Read<byte>(Status + (ulong)i));
            Assert.Equal(OriginalSector(100 + i), _p.Memory.GetSpan(Buffer + (ulong)(512 * i), 512).ToArray());
        }
    }

    [Fact]
    public void WithAWorkerCachedReadsCompleteOnTheNotifyingThreadAndAFlushAndWhatFollowsOnTheWorker()
    {
        Start();
        var writes = new RecordingWrites();
        _p.Memory.ExternalWrites = writes;
        _device!.StartWorker();
        ulong[] headers = [Header, Header + 32, Header + 64];
        _p.Memory.Write(headers[0], VirtioBlockDevice.RequestIn);
        _p.Memory.Write(headers[0] + 8, 7UL);
        _p.Memory.Write(headers[1], VirtioBlockDevice.RequestFlush);
        _p.Memory.Write(headers[2], VirtioBlockDevice.RequestIn);
        _p.Memory.Write(headers[2] + 8, 8UL);
        _ring!.AddChain((headers[0], 16, false), (Buffer, 512, true), (Status, 1, true));
        _ring.AddChain((headers[1], 16, false), (Status + 1, 1, true));
        _ring.AddChain((headers[2], 16, false), (Buffer + 0x1000, 512, true), (Status + 2, 1, true));

        _driver!.Notify(0);

        Assert.True(SpinWait.SpinUntil(() => _ring.UsedIndex == 3, TimeSpan.FromSeconds(10)));
        Assert.Equal([0, 0, 0], [_p.Memory.Read<byte>(Status), _p.Memory.Read<byte>(Status + 1), _p.Memory.Read<byte>(Status + 2)]);
        Assert.Equal(FileSector(7), _p.Memory.GetSpan(Buffer, 512).ToArray());
        Assert.Equal(FileSector(8), _p.Memory.GetSpan(Buffer + 0x1000, 512).ToArray());

        // The file was just written, so its pages are cached: the first read is done before
        // Notify returns, on this thread; the flush waits for the disk, so it and the read
        // behind it (kept in order) are the worker's. Every DMA write was reported.
        int self = Environment.CurrentManagedThreadId;
        Assert.Equal(self, writes.ThreadOf(Buffer));
        int worker = writes.ThreadOf(Buffer + 0x1000);
        Assert.NotEqual(self, worker);
        Assert.Equal(worker, writes.ThreadOf(Status + 1));
    }

    /// <summary>Which thread reported a device write covering each address.</summary>
    private sealed class RecordingWrites : IExternalWriteObserver
    {
        private readonly List<(ulong Address, ulong Length, int Thread)> _writes = new();

        public void OnExternalWrite(ulong address, ulong length)
        {
            lock (_writes)
            {
                _writes.Add((address, length, Environment.CurrentManagedThreadId));
            }
        }

        public int ThreadOf(ulong address)
        {
            lock (_writes)
            {
                return _writes.Single(w => address >= w.Address && address - w.Address < w.Length).Thread;
            }
        }
    }

    [Fact]
    public void ManyRequestsInOneNotificationCompleteInOrderWithOneInterrupt()
    {
        Start();
        _ring!.SetUsedEvent(0);
        ushort[] heads = new ushort[8];
        for (int i = 0; i < heads.Length; i++)
        {
            _p.Memory.Write(Header + (ulong)(32 * i), 0u);
            _p.Memory.Write(Header + (ulong)(32 * i) + 8, (ulong)i);
            heads[i] = _ring.AddChain((Header + (ulong)(32 * i), 16, false), (Buffer + (ulong)(512 * i), 512, true), (Status + (ulong)i, 1, true));
        }

        _driver!.Notify(0);
        Assert.Equal(8, _ring.UsedIndex);
        for (int i = 0; i < heads.Length; i++)
        {
            Assert.Equal((heads[i], 513u), _ring.Used(i));
            Assert.Equal(FileSector(i), _p.Memory.GetSpan(Buffer + (ulong)(512 * i), 512).ToArray());
        }

        uint gsi = _p.Pci.IntxGsiOf(_p.Pci.GetDevice(_driver.Slot)!)!.Value;
        Assert.Single(_p.Interrupts.LevelChanges, c => c.Gsi == gsi && c.Level);
    }
}
