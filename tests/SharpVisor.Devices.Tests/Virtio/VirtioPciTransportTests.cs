using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Tests.Pci;
using SharpVisor.Devices.Virtio;

namespace SharpVisor.Devices.Tests.Virtio;

public sealed class VirtioPciTransportTests : IDisposable
{
    private const ulong Ring0 = 0x1_0000;
    private const ulong Ring1 = 0x2_0000;
    private const ulong Data = 0x10_0000;

    private readonly TestPlatform _p = new();
    private readonly EchoDevice _device;
    private readonly VirtioPciDevice _pci;
    private readonly VirtioPciTestDriver _driver;

    public VirtioPciTransportTests()
    {
        _device = new EchoDevice(_p.Memory);
        _pci = new VirtioPciDevice(_device);
        int slot = _p.Pci.Attach(_pci);
        _driver = new VirtioPciTestDriver(_p, slot);
    }

    public void Dispose()
    {
        _device.Dispose();
        _p.Dispose();
    }

    private ulong Features => VirtioFeatures.Version1 | VirtioFeatures.RingEventIdx | VirtioFeatures.RingIndirectDesc;

    [Fact]
    public void IdentifiesAsAModernVirtioDevice()
    {
        Assert.Equal(0x1AF4, _p.ConfigRead16(_driver.Slot, PciConfigSpace.VendorId));
        Assert.Equal(0x1040 + 42, _p.ConfigRead16(_driver.Slot, PciConfigSpace.DeviceId));
        Assert.Equal(1, _p.ConfigRead8(_driver.Slot, PciConfigSpace.RevisionId));
        Assert.Equal(1, _p.ConfigRead8(_driver.Slot, PciConfigSpace.InterruptPin));
        Assert.Equal(
            [VirtioPciCapabilityType.CommonConfig, VirtioPciCapabilityType.NotifyConfig, VirtioPciCapabilityType.IsrConfig, VirtioPciCapabilityType.DeviceConfig, VirtioPciCapabilityType.PciConfig],
            _driver.Capabilities.Keys.Order());
        Assert.Equal(4u, _driver.NotifyMultiplier);
        Assert.NotEqual(0, _driver.MsixCapabilityOffset);
        Assert.Equal(2, _driver.NumQueues);
        Assert.Equal(_pci.Bar.Address, _driver.BarAddress);
    }

    [Fact]
    public void OffersFeaturesInTwoPagesAndAcceptsASubsetWithVersion1()
    {
        ulong offered = _driver.ReadDeviceFeatures();
        Assert.Equal(EchoDevice.FeatureExtra | VirtioFeatures.Transport, offered);
        Assert.True(_driver.Negotiate(VirtioFeatures.Version1 | EchoDevice.FeatureExtra));
        Assert.Equal(VirtioFeatures.Version1 | EchoDevice.FeatureExtra, _device.DriverFeatures);

        // Once FEATURES_OK is set, feature writes are ignored.
        _driver.Write32(_driver.Common + 0x08, 0);
        _driver.Write32(_driver.Common + 0x0C, 0);
        Assert.Equal(VirtioFeatures.Version1 | EchoDevice.FeatureExtra, _device.DriverFeatures);
    }

    [Fact]
    public void RefusesFeaturesWithoutVersion1OrNotOffered()
    {
        Assert.False(_driver.Negotiate(EchoDevice.FeatureExtra));
        Assert.False(_driver.Negotiate(VirtioFeatures.Version1 | (1UL << 40)));
        Assert.True(_driver.Negotiate(VirtioFeatures.Version1));
    }

    [Fact]
    public void DriverOkWithoutFeaturesOkFailsTheDevice()
    {
        _driver.Status = (byte)(VirtioDeviceStatus.Acknowledge | VirtioDeviceStatus.Driver | VirtioDeviceStatus.DriverOk);
        Assert.NotEqual(0, _driver.Status & (byte)VirtioDeviceStatus.DeviceNeedsReset);
        Assert.Contains("FEATURES_OK", _device.FailureReason);
    }

    [Fact]
    public void QueueRegistersReadBackAndNotifyReachesTheDevice()
    {
        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(0, Ring0, 8);
        _driver.Write16(_driver.Common + 0x16, 0);
        Assert.Equal(8, _driver.Read16(_driver.Common + 0x18));
        Assert.Equal(1, _driver.Read16(_driver.Common + 0x1C));
        Assert.Equal(ring.DescriptorTable, _driver.Read64(_driver.Common + 0x20));
        Assert.Equal(ring.DriverArea, _driver.Read64(_driver.Common + 0x28));
        Assert.Equal(ring.DeviceArea, _driver.Read64(_driver.Common + 0x30));
        _driver.DriverOk();

        _p.Memory.Write(Data, "hello"u8);
        ushort head = ring.AddChain((Data, 5, false), (Data + 0x100, 5, true));
        _driver.Notify(0);
        Assert.Equal(1, ring.UsedIndex);
        Assert.Equal((head, 5u), ring.Used(0));
        Assert.Equal("hello"u8.ToArray(), _p.Memory.GetSpan(Data + 0x100, 5).ToArray());
    }

    [Fact]
    public void BuffersPostedBeforeDriverOkAreServedAtDriverOk()
    {
        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(1, Ring1, 8);
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _driver.Notify(1);
        Assert.Equal(0, ring.UsedIndex);
        _driver.DriverOk();
        Assert.Equal(1, ring.UsedIndex);
        Assert.Equal(1, _device.ActivatedCount);
    }

    [Fact]
    public void QueueRegistersAreFrozenOnceEnabled()
    {
        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(0, Ring0, 8);
        _driver.Write64(_driver.Common + 0x20, 0x40_0000);
        _driver.Write16(_driver.Common + 0x18, 4);
        Assert.Equal(ring.DescriptorTable, _device.Queues[0].DescriptorTableAddress);
        Assert.Equal(8, _device.Queues[0].Size);
    }

    [Fact]
    public void EnablingAQueueWithRingsOutsideMemoryFailsTheDevice()
    {
        Assert.True(_driver.Negotiate(Features));
        _driver.Write16(_driver.Common + 0x16, 0);
        _driver.Write64(_driver.Common + 0x20, 0xFFFF_F000);
        _driver.Write64(_driver.Common + 0x28, Ring0);
        _driver.Write64(_driver.Common + 0x30, Ring1);
        _driver.Write16(_driver.Common + 0x1C, 1);
        Assert.True(_device.NeedsReset);
        Assert.NotEqual(0, _driver.Status & 0x40);
        Assert.Contains("descriptor table", _device.FailureReason);
    }

    [Fact]
    public void WritingZeroToStatusResetsDeviceAndQueues()
    {
        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(0, Ring0, 8, msixVector: 1);
        _driver.DriverOk();
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _driver.Notify(0);

        _driver.Status = 0;
        Assert.Equal(0, _driver.Status);
        Assert.Equal(0UL, _device.DriverFeatures);
        _driver.Write16(_driver.Common + 0x16, 0);
        Assert.Equal(0, _driver.Read16(_driver.Common + 0x1C));
        Assert.Equal(0UL, _driver.Read64(_driver.Common + 0x20));
        Assert.Equal(16, _driver.Read16(_driver.Common + 0x18)); // back to the device's maximum
    }

    [Fact]
    public void ANeedsResetDeviceIsRecoveredByReset()
    {
        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(0, Ring0, 8);
        _driver.DriverOk();
        ring.Publish(9); // head out of range
        _driver.Notify(0);
        Assert.True(_device.NeedsReset);
        Assert.Contains("head descriptor index 9", _device.FailureReason);

        // Further notifications are ignored: nothing is used.
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _driver.Notify(0);
        Assert.Equal(0, ring.UsedIndex);

        Assert.True(_driver.Negotiate(Features));
        Assert.False(_device.NeedsReset);
        ring = _driver.SetupQueue(0, Ring0, 8);
        _driver.DriverOk();
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _driver.Notify(0);
        Assert.Equal(1, ring.UsedIndex);
    }

    [Fact]
    public void MsixVectorsBeyondTheTableReadBackAsNoVector()
    {
        _driver.Write16(_driver.Common + 0x10, 3); // 2 queues + config = 3 vectors: 0..2
        Assert.Equal(Virtqueue.NoVector, _driver.Read16(_driver.Common + 0x10));
        _driver.Write16(_driver.Common + 0x10, 2);
        Assert.Equal(2, _driver.Read16(_driver.Common + 0x10));
        _driver.Write16(_driver.Common + 0x16, 1);
        _driver.Write16(_driver.Common + 0x1A, 7);
        Assert.Equal(Virtqueue.NoVector, _driver.Read16(_driver.Common + 0x1A));
    }

    [Fact]
    public void UsedBuffersRaiseTheQueueMsixVector()
    {
        _driver.EnableMsix(3);
        Assert.True(_driver.Negotiate(Features));
        _driver.Write16(_driver.Common + 0x10, 2);
        DriverRing ring = _driver.SetupQueue(1, Ring1, 8, msixVector: 1);
        _driver.DriverOk();
        ring.SetUsedEvent(0);
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _driver.Notify(1);
        Assert.Equal([(0xFEE0_0000UL, 0x41u)], _p.Interrupts.Messages);

        _device.HostChangesConfig(7);
        Assert.Equal((0xFEE0_0000UL, 0x42u), _p.Interrupts.Messages.Last());
    }

    [Fact]
    public void WithoutMsixInterruptsUseIntxAndTheIsrReadClearsThem()
    {
        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(0, Ring0, 8);
        _driver.DriverOk();
        uint gsi = _p.Pci.IntxGsiOf(_pci)!.Value;
        ring.SetUsedEvent(0);
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _driver.Notify(0);
        Assert.True(_p.Interrupts.Level(gsi));
        Assert.Equal(VirtioPciDevice.IsrQueue, _driver.ReadIsr());
        Assert.False(_p.Interrupts.Level(gsi));
        Assert.Equal(0, _driver.ReadIsr());

        _device.HostChangesConfig(1);
        Assert.Equal(VirtioPciDevice.IsrConfig, _driver.ReadIsr());
    }

    [Fact]
    public void ConfigGenerationAndDeviceConfigFollowTheDevice()
    {
        byte before = _driver.ConfigGeneration;
        _device.HostChangesConfig(0x99);
        Assert.Equal((byte)(before + 1), _driver.ConfigGeneration);
        Assert.Equal(0x99, _driver.Read8(_driver.DeviceConfig));
        _driver.Write8(_driver.DeviceConfig + 3, 0x11);
        Assert.Equal(0x1100_0099u, _driver.Read32(_driver.DeviceConfig));
        Assert.Equal(0u, _driver.Read32(_driver.DeviceConfig + 6)); // past the end of the structure
    }

    [Fact]
    public void PciConfigCapabilityIsAWindowOntoBar0()
    {
        int cap = _driver.Capabilities[VirtioPciCapabilityType.PciConfig].At;
        _p.ConfigWrite8(_driver.Slot, cap + 4, 0);
        _p.ConfigWrite32(_driver.Slot, cap + 8, 0x12); // num_queues
        _p.ConfigWrite32(_driver.Slot, cap + 12, 2);
        Assert.Equal(2u, _p.ConfigRead32(_driver.Slot, cap + 16) & 0xFFFF);

        _p.ConfigWrite32(_driver.Slot, cap + 8, 0x14); // device_status
        _p.ConfigWrite32(_driver.Slot, cap + 12, 1);
        _p.ConfigWrite32(_driver.Slot, cap + 16, (uint)VirtioDeviceStatus.Acknowledge);
        Assert.Equal(VirtioDeviceStatus.Acknowledge, _device.Status);
    }

    [Fact]
    public void NotifyAddressFollowsTheBar()
    {
        Assert.Equal(_driver.NotifyAddress(1), _pci.QueueNotifyAddress(1));
        ulong? seen = null;
        _pci.BarMappingChanged += bar => seen = bar.MappedAddress;
        _p.ConfigWrite32(_driver.Slot, 0x10, 0xE000_0004);
        _p.ConfigWrite32(_driver.Slot, 0x14, 0);
        Assert.Equal(0xE000_0000UL, seen);
        Assert.Equal(0xE000_0000UL + VirtioPciDevice.NotifyOffset + 4, _pci.QueueNotifyAddress(1));
        Assert.Null(_pci.QueueNotifyAddress(2));
    }

    [Fact]
    public void WorkerThreadServesNotificationsThroughEventFds()
    {
        _device.StartWorker();
        Assert.NotNull(_device.GetNotifyEvent(0));
        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(0, Ring0, 8);
        _driver.DriverOk();
        for (int i = 0; i < 5; i++)
        {
            ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
            _driver.Notify(0);
        }

        // An ioeventfd would signal the same eventfd without going through the MMIO bus.
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _device.GetNotifyEvent(0)!.Signal();

        SpinWait.SpinUntil(() => ring.UsedIndex == 6, TimeSpan.FromSeconds(5));
        Assert.Equal(6, ring.UsedIndex);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AFrozenDeviceServesNothingUntilItThaws(bool withWorker)
    {
        if (withWorker)
        {
            _device.StartWorker();
        }

        Assert.True(_driver.Negotiate(Features));
        DriverRing ring = _driver.SetupQueue(0, Ring0, 8);
        _driver.DriverOk();
        _p.Memory.Write(Data, (byte)0x5A);
        _p.Memory.Write(Data + 0x100, (byte)0);

        // A paused machine: requests queued and notified while frozen leave guest memory as it is.
        _device.Freeze();
        Assert.True(_device.IsFrozen);
        ring.AddChain((Data, 1, false), (Data + 0x100, 1, true));
        _driver.Notify(0);
        if (withWorker)
        {
            _device.GetNotifyEvent(0)!.Signal();
            Thread.Sleep(200);
        }

        Assert.Equal(0, ring.UsedIndex);
        Assert.Equal(0, _p.Memory.Read<byte>(Data + 0x100));
        Assert.Empty(_device.Seen);

        // The thaw serves what the freeze held back, without another notification.
        _device.Thaw();
        Assert.False(_device.IsFrozen);
        SpinWait.SpinUntil(() => ring.UsedIndex == 1, TimeSpan.FromSeconds(5));
        Assert.Equal(1, ring.UsedIndex);
        Assert.Equal(0x5A, _p.Memory.Read<byte>(Data + 0x100));

        // And the device works on as before.
        ring.AddChain((Data, 1, false), (Data + 0x200, 1, true));
        _driver.Notify(0);
        SpinWait.SpinUntil(() => ring.UsedIndex == 2, TimeSpan.FromSeconds(5));
        Assert.Equal(2, ring.UsedIndex);
    }
}
