using SharpVisor.Devices.Virtio;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Tests.Virtio;

public sealed class VirtqueueTests : IDisposable
{
    private const ulong RingBase = 0x1_0000;
    private const ulong Data = 0x8_0000;
    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly DriverRing _ring;
    private readonly Virtqueue _queue;

    public VirtqueueTests()
    {
        _ring = new DriverRing(_memory, RingBase, 8);
        _queue = new Virtqueue(_memory, 0, 8)
        {
            DescriptorTableAddress = _ring.DescriptorTable,
            DriverAreaAddress = _ring.DriverArea,
            DeviceAreaAddress = _ring.DeviceArea,
            IndirectDescriptors = true,
        };
        _queue.Enable();
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void PopsAChainWithReadableThenWritableBuffers()
    {
        ushort head = _ring.AddChain((Data, 16, false), (Data + 0x100, 512, true), (Data + 0x400, 1, true));
        Assert.True(_queue.TryPop(out DescriptorChain chain));
        Assert.Equal(head, chain.Head);
        Assert.Equal(16UL, chain.ReadableLength);
        Assert.Equal(513UL, chain.WritableLength);
        Assert.Equal([new VirtqBuffer(Data, 16, false), new VirtqBuffer(Data + 0x100, 512, true), new VirtqBuffer(Data + 0x400, 1, true)], chain.Buffers);
        Assert.False(_queue.TryPop(out _));
    }

    [Fact]
    public void CopyHelpersSpanBufferBoundaries()
    {
        _memory.Write(Data, "abc"u8);
        _memory.Write(Data + 0x10, "defg"u8);
        _ring.AddChain((Data, 3, false), (Data + 0x10, 4, false), (Data + 0x100, 2, true), (Data + 0x200, 5, true));
        Assert.True(_queue.TryPop(out DescriptorChain chain));
        byte[] read = new byte[5];
        Assert.Equal(5, chain.CopyFromReadable(1, read));
        Assert.Equal("bcdef"u8.ToArray(), read);
        Assert.Equal(6, chain.CopyToWritable(1, "123456"u8));
        Assert.Equal((byte)'1', _memory.Read<byte>(Data + 0x101));
        Assert.Equal("23456"u8.ToArray(), _memory.GetSpan(Data + 0x200, 5).ToArray());
        Assert.Equal(0, chain.CopyToWritable(7, "x"u8));

        var segments = new List<VirtqBuffer>();
        chain.GetSegments(writable: true, 1, 4, segments);
        Assert.Equal([new VirtqBuffer(Data + 0x101, 1, true), new VirtqBuffer(Data + 0x200, 3, true)], segments);
    }

    [Fact]
    public void PushUsedWritesTheElementAndThenTheIndex()
    {
        ushort head = _ring.AddChain((Data, 8, true));
        Assert.True(_queue.TryPop(out _));
        _queue.PushUsed(head, 8);
        Assert.Equal(1, _ring.UsedIndex);
        Assert.Equal((head, 8u), _ring.Used(0));
    }

    [Fact]
    public void IndexesWrapAround()
    {
        for (int i = 0; i < 70000; i++)
        {
            ushort head = _ring.AddChain((Data, 4, true));
            Assert.True(_queue.TryPop(out DescriptorChain chain));
            Assert.Equal(head, chain.Head);
            _queue.PushUsed(head, 4);
        }

        Assert.Equal(70000 & 0xFFFF, _ring.UsedIndex);
        Assert.Equal(70000 & 0xFFFF, _queue.LastAvailIndex);
    }

    [Fact]
    public void FollowsAnIndirectTable()
    {
        ushort head = _ring.AddIndirect(Data + 0x1000, (Data, 16, false), (Data + 0x100, 100, true));
        Assert.True(_queue.TryPop(out DescriptorChain chain));
        Assert.Equal(head, chain.Head);
        Assert.Equal(2, chain.Buffers.Count);
        Assert.Equal(100UL, chain.WritableLength);
    }

    public static TheoryData<string, string> Violations => new()
    {
        { "head", "head descriptor index" },
        { "next", "next index" },
        { "loop", "longer than" },
        { "buffer-outside", "outside guest memory" },
        { "buffer-in-hole", "outside guest memory" },
        { "table-outside", "outside guest memory" },
        { "readable-after-writable", "readable descriptor after a writable one" },
        { "indirect-nested", "nested indirect" },
        { "indirect-length", "multiple of 16" },
        { "indirect-empty", "multiple of 16" },
        { "indirect-with-next", "VIRTQ_DESC_F_NEXT" },
        { "indirect-not-head", "middle of the chain" },
        { "indirect-outside", "indirect table" },
        { "indirect-loop", "longer than" },
        { "avail-jump", "ran 9 entries ahead" },
        { "huge-length", "outside guest memory" },
    };

    [Theory]
    [MemberData(nameof(Violations))]
    public void RejectsEveryKindOfBadChain(string kind, string expected)
    {
        const ushort Next = DescriptorChain.FlagNext;
        const ushort Write = DescriptorChain.FlagWrite;
        const ushort Indirect = DescriptorChain.FlagIndirect;
        ulong table = Data + 0x1000;
        switch (kind)
        {
            case "head":
                _ring.Publish(8);
                break;
            case "next":
                _ring.SetDescriptor(0, Data, 4, Next, 8);
                _ring.Publish(0);
                break;
            case "loop":
                _ring.SetDescriptor(0, Data, 4, Next, 1);
                _ring.SetDescriptor(1, Data, 4, Next, 0);
                _ring.Publish(0);
                break;
            case "buffer-outside":
                _ring.SetDescriptor(0, (4 << 20) - 8, 16, 0, 0);
                _ring.Publish(0);
                break;
            case "buffer-in-hole":
                _ring.SetDescriptor(0, 0xFEE0_0000, 4, Write, 0);
                _ring.Publish(0);
                break;
            case "table-outside":
                _queue.Reset();
                _queue.DescriptorTableAddress = (4 << 20) - 64;
                _queue.DriverAreaAddress = _ring.DriverArea;
                _queue.DeviceAreaAddress = _ring.DeviceArea;
                Assert.Contains("outside guest memory", Assert.Throws<VirtqueueException>(_queue.Enable).Message);
                return;
            case "readable-after-writable":
                _ring.AddChain((Data, 4, true), (Data, 4, false));
                break;
            case "indirect-nested":
                DriverRing.WriteDescriptor(_memory, table, table, 16, Indirect, 0);
                _ring.SetDescriptor(0, table, 16, Indirect, 0);
                _ring.Publish(0);
                break;
            case "indirect-length":
                _ring.SetDescriptor(0, table, 24, Indirect, 0);
                _ring.Publish(0);
                break;
            case "indirect-empty":
                _ring.SetDescriptor(0, table, 0, Indirect, 0);
                _ring.Publish(0);
                break;
            case "indirect-with-next":
                _ring.SetDescriptor(0, table, 16, Indirect | Next, 1);
                _ring.Publish(0);
                break;
            case "indirect-not-head":
                _ring.SetDescriptor(0, Data, 4, Next, 1);
                _ring.SetDescriptor(1, table, 16, Indirect, 0);
                _ring.Publish(0);
                break;
            case "indirect-outside":
                _ring.SetDescriptor(0, (4 << 20) - 16, 32, Indirect, 0);
                _ring.Publish(0);
                break;
            case "indirect-loop":
                DriverRing.WriteDescriptor(_memory, table, Data, 4, Next, 1);
                DriverRing.WriteDescriptor(_memory, table + 16, Data, 4, Next, 0);
                _ring.SetDescriptor(0, table, 32, Indirect, 0);
                _ring.Publish(0);
                break;
            case "avail-jump":
                _ring.SetAvailIndex(9);
                break;
            case "huge-length":
                _ring.SetDescriptor(0, Data, 0x7FFF_FFFF, 0, 0);
                _ring.Publish(0);
                break;
        }

        VirtqueueException e = Assert.Throws<VirtqueueException>(() => _queue.TryPop(out _));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void IndirectTablesMayReachTheDeviceMaximumOfAShrunkQueue()
    {
        var ring = new DriverRing(_memory, 0x3_0000, 8);
        var queue = new Virtqueue(_memory, 1, 16)
        {
            Size = 8,
            DescriptorTableAddress = ring.DescriptorTable,
            DriverAreaAddress = ring.DriverArea,
            DeviceAreaAddress = ring.DeviceArea,
            IndirectDescriptors = true,
        };
        queue.Enable();
        (ulong, uint, bool)[] twelve = Enumerable.Range(0, 12).Select(i => (Data + (ulong)(16 * i), 16u, false)).ToArray();
        ring.AddIndirect(Data + 0x1000, twelve);
        Assert.True(queue.TryPop(out DescriptorChain chain));
        Assert.Equal(12, chain.Buffers.Count);

        (ulong, uint, bool)[] seventeen = Enumerable.Range(0, 17).Select(i => (Data + (ulong)(16 * i), 16u, false)).ToArray();
        ring.AddIndirect(Data + 0x2000, seventeen);
        Assert.Contains("up to 16 entries", Assert.Throws<VirtqueueException>(() => queue.TryPop(out _)).Message);
    }

    [Fact]
    public void IndirectWithoutTheFeatureIsRejected()
    {
        _queue.IndirectDescriptors = false;
        _ring.AddIndirect(Data + 0x1000, (Data, 4, false));
        Assert.Contains("VIRTIO_RING_F_INDIRECT_DESC", Assert.Throws<VirtqueueException>(() => _queue.TryPop(out _)).Message);
    }

    [Fact]
    public void EnableRejectsMisalignedRingsAndBadSizes()
    {
        _queue.Reset();
        _queue.DescriptorTableAddress = RingBase + 8;
        _queue.DriverAreaAddress = _ring.DriverArea;
        _queue.DeviceAreaAddress = _ring.DeviceArea;
        Assert.Contains("misaligned", Assert.Throws<VirtqueueException>(_queue.Enable).Message);
        _queue.DescriptorTableAddress = RingBase;
        _queue.Size = 6;
        Assert.Contains("power of two", Assert.Throws<VirtqueueException>(_queue.Enable).Message);
        _queue.Size = 16;
        Assert.Contains("power of two", Assert.Throws<VirtqueueException>(_queue.Enable).Message);
    }

    [Fact]
    public void WithoutEventIdxTheNoInterruptFlagSuppressesNotifications()
    {
        ushort head = _ring.AddChain((Data, 4, true));
        _queue.TryPop(out _);
        _queue.PushUsed(head, 4);
        Assert.True(_queue.NeedsNotification());
        Assert.False(_queue.NeedsNotification()); // nothing new since

        _ring.SetAvailFlags(Virtqueue.AvailFlagNoInterrupt);
        head = _ring.AddChain((Data, 4, true));
        _queue.TryPop(out _);
        _queue.PushUsed(head, 4);
        Assert.False(_queue.NeedsNotification());
    }

    [Fact]
    public void WithoutEventIdxTheDeviceTogglesNoNotify()
    {
        _queue.DisableNotifications();
        Assert.Equal(Virtqueue.UsedFlagNoNotify, _ring.UsedFlags);
        Assert.False(_queue.EnableNotifications());
        Assert.Equal(0, _ring.UsedFlags);
        _ring.AddChain((Data, 4, true));
        Assert.True(_queue.EnableNotifications()); // a buffer raced in: drain again
    }

    [Fact]
    public void EventIdxNotifiesOnlyWhenUsedIndexCrossesUsedEvent()
    {
        _queue.EventIdx = true;
        _ring.SetUsedEvent(2); // interrupt me when used idx moves past 2
        for (int i = 0; i < 4; i++)
        {
            ushort head = _ring.AddChain((Data, 4, true));
            _queue.TryPop(out _);
            _queue.PushUsed(head, 4);
            bool expected = i == 2; // used idx went 2 -> 3
            Assert.Equal(expected, _queue.NeedsNotification());
        }

        // A batch that jumps over used_event still notifies once.
        _ring.SetUsedEvent(5);
        for (int i = 0; i < 3; i++)
        {
            ushort head = _ring.AddChain((Data, 4, true));
            _queue.TryPop(out _);
            _queue.PushUsed(head, 4);
        }

        Assert.True(_queue.NeedsNotification());
    }

    [Fact]
    public void EventIdxPublishesAvailEventForDriverNotifications()
    {
        _queue.EventIdx = true;
        _ring.AddChain((Data, 4, true));
        _ring.AddChain((Data, 4, true));
        _queue.TryPop(out _);
        _queue.TryPop(out _);
        Assert.False(_queue.EnableNotifications());
        Assert.Equal(2, _ring.AvailEvent);
        _queue.DisableNotifications();
        Assert.Equal(0, _ring.UsedFlags); // event idx never uses the flag
    }
}
