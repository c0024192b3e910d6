using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// virtio-net (virtio 1.x §5.1) over a <see cref="TapDevice"/>: one receive and one transmit
/// queue, a MAC address and link status in configuration space, mergeable receive buffers, and
/// checksum/TSO offloads — offered only when the TAP accepted them (TUNSETOFFLOAD) and switched
/// on in the TAP to match what the driver negotiated. Frames cross in both directions with the
/// 12-byte virtio_net_hdr the TAP also speaks (TUNSETVNETHDRSZ 12). Receive runs on the device
/// worker when the TAP is readable and stalls while the driver has posted no buffers.
/// </summary>
public sealed class VirtioNetDevice : VirtioDevice
{
    public const ulong FeatureCsum = 1UL << 0;
    public const ulong FeatureGuestCsum = 1UL << 1;
    public const ulong FeatureMac = 1UL << 5;
    public const ulong FeatureGuestTso4 = 1UL << 7;
    public const ulong FeatureGuestTso6 = 1UL << 8;
    public const ulong FeatureGuestEcn = 1UL << 9;
    public const ulong FeatureHostTso4 = 1UL << 11;
    public const ulong FeatureHostTso6 = 1UL << 12;
    public const ulong FeatureHostEcn = 1UL << 13;
    public const ulong FeatureMergeableRxBuffers = 1UL << 15;
    public const ulong FeatureStatus = 1UL << 16;

    public const ulong OffloadFeatures = FeatureCsum | FeatureGuestCsum | FeatureGuestTso4 | FeatureGuestTso6 | FeatureGuestEcn |
        FeatureHostTso4 | FeatureHostTso6 | FeatureHostEcn;

    public const int ReceiveQueue = 0;
    public const int TransmitQueue = 1;
    public const int HeaderSize = 12;
    public const ushort StatusLinkUp = 1;

    /// <summary>A 64 KiB GSO frame, its Ethernet/VLAN header and the virtio-net header.</summary>
    public const int MaxFrame = 65536 + 14 + 4 + HeaderSize;

    /// <summary>Frames received per wake-up before the worker looks at other work.</summary>
    private const int ReceiveBatch = 64;

    private const int ConfigLength = 10;

    private readonly TapDevice _tap;
    private readonly byte[] _mac;
    private readonly byte[] _rxFrame = new byte[MaxFrame];
    private readonly byte[] _txFrame = new byte[MaxFrame];
    private readonly List<DescriptorChain> _rxChains = new();
    private int _rxPending;
    private bool _rxAdmitted;
    private volatile bool _rxStalled;
    private bool _linkUp = true;

    public VirtioNetDevice(GuestMemory memory, TapDevice tap, ReadOnlySpan<byte> mac, ushort queueSize = 256)
        : base(VirtioDeviceType.Net, memory, 2, queueSize, FeatureMac | FeatureStatus | FeatureMergeableRxBuffers | ProbeOffloads(tap))
    {
        if (mac.Length != 6)
        {
            throw new ArgumentException("a MAC address has 6 bytes", nameof(mac));
        }

        _tap = tap;
        _mac = mac.ToArray();
        tap.SetVnetHeaderSize(HeaderSize);
    }

    public TapDevice Tap => _tap;

    /// <summary>The guest's MAC address, aa:bb:cc:dd:ee:ff.</summary>
    public string MacAddress => string.Join(':', _mac.Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    public long TxFrames { get; private set; }

    public long TxDropped { get; private set; }

    public long RxFrames { get; private set; }

    public long RxDropped { get; private set; }

    public override int ConfigSize => ConfigLength;

    /// <summary>Firecracker's rx_rate_limiter: frames to the guest (one op each, their bytes). Swappable while running.</summary>
    public RateLimiting.RateLimiter? RxRateLimiter { get; set; }

    /// <summary>Firecracker's tx_rate_limiter: frames from the guest. Swappable while running.</summary>
    public RateLimiting.RateLimiter? TxRateLimiter { get; set; }

    /// <summary>Sees every frame the guest sends first (the MMDS); its replies reach the guest as received frames.</summary>
    public FrameInterceptor? Interceptor { get; set; }

    /// <summary>Replies of the <see cref="Interceptor"/> waiting for receive buffers, header included; bounded.</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<byte[]> _injected = new();

    public const int MaxInjectedFrames = 256;

    public override void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        _mac.CopyTo(config);
        BinaryPrimitives.WriteUInt16LittleEndian(config[6..], _linkUp ? StatusLinkUp : (ushort)0);
        BinaryPrimitives.WriteUInt16LittleEndian(config[8..], 1); // max_virtqueue_pairs
        config.Slice(offset, data.Length).CopyTo(data);
    }

    /// <summary>The host pulls or plugs the virtual cable; the driver sees a configuration change.</summary>
    public void SetLinkUp(bool up)
    {
        _linkUp = up;
        ConfigChanged();
    }

    protected override IEnumerable<(int Fd, Func<bool> Wanted, Action Ready)> PollSources() =>
        [(_tap.Fd, () => IsActive && !_rxStalled, () => ServiceBackend(() => Receive(Queues[ReceiveQueue])))];

    protected override void OnActivated()
    {
        // The TAP may now hand over exactly the offloaded frames the driver can take.
        uint flags = 0;
        flags |= HasFeature(FeatureGuestCsum) ? TapDevice.TunFlagChecksum : 0;
        flags |= HasFeature(FeatureGuestCsum | FeatureGuestTso4) ? TapDevice.TunFlagTso4 : 0;
        flags |= HasFeature(FeatureGuestCsum | FeatureGuestTso6) ? TapDevice.TunFlagTso6 : 0;
        flags |= (flags & (TapDevice.TunFlagTso4 | TapDevice.TunFlagTso6)) != 0 && HasFeature(FeatureGuestEcn) ? TapDevice.TunFlagTsoEcn : 0;
        if (!_tap.TrySetOffload(flags))
        {
            Fail($"the TAP refused offload flags 0x{flags:x}");
        }

        _rxStalled = false;
        _rxPending = 0;
        _rxAdmitted = false;
    }

    protected override void OnReset()
    {
        _tap.TrySetOffload(0);
        _rxStalled = false;
        _rxPending = 0;
        _rxAdmitted = false;
    }

    protected override bool ValidateFeatures(ulong features)
    {
        // Segmentation offloads depend on checksum offload (virtio 1.x §5.1.3.1).
        bool guestTso = (features & (FeatureGuestTso4 | FeatureGuestTso6 | FeatureGuestEcn)) != 0;
        bool hostTso = (features & (FeatureHostTso4 | FeatureHostTso6 | FeatureHostEcn)) != 0;
        return (!guestTso || (features & FeatureGuestCsum) != 0) && (!hostTso || (features & FeatureCsum) != 0);
    }

    protected override void ProcessQueue(Virtqueue queue)
    {
        if (queue.Index == TransmitQueue)
        {
            RateLimiting.RateLimiter? limiter = TxRateLimiter;
            DrainQueue(queue, Transmit, limiter is null ? null :
                chain => Admit(limiter, (long)chain.ReadableLength - HeaderSize, TransmitQueue));
            if (!_injected.IsEmpty)
            {
                // The interceptor answered: deliver now rather than wait for the TAP to have something.
                Receive(Queues[ReceiveQueue]);
            }
        }
        else
        {
            // The driver posted receive buffers: resume a stalled receive.
            _rxStalled = false;
            Receive(queue);
        }
    }

    private static ulong ProbeOffloads(TapDevice tap)
    {
        bool accepted = tap.TrySetOffload(TapDevice.TunFlagChecksum | TapDevice.TunFlagTso4 | TapDevice.TunFlagTso6 | TapDevice.TunFlagTsoEcn);
        tap.TrySetOffload(0);
        return accepted ? OffloadFeatures : 0;
    }

    private uint Transmit(DescriptorChain chain)
    {
        if (chain.ReadableLength < HeaderSize || chain.ReadableLength > MaxFrame)
        {
            TxDropped++;
            return 0;
        }

        int length = chain.CopyFromReadable(0, _txFrame);
        if (Interceptor is { } interceptor && interceptor(_txFrame.AsSpan(HeaderSize, length - HeaderSize), Inject))
        {
            TxFrames++;
            IoCounters.AddWrite(length - HeaderSize);
            return 0;
        }

        if (_tap.Write(_txFrame.AsSpan(0, length)))
        {
            TxFrames++;
            IoCounters.AddWrite(length - HeaderSize);
        }
        else
        {
            TxDropped++;
        }

        return 0;
    }

    private void Inject(byte[] frame)
    {
        if (_injected.Count >= MaxInjectedFrames || frame.Length + HeaderSize > MaxFrame)
        {
            RxDropped++;
            return;
        }

        // A zeroed virtio_net_hdr: no offloads, checksums complete.
        byte[] withHeader = new byte[HeaderSize + frame.Length];
        frame.CopyTo(withHeader, HeaderSize);
        _injected.Enqueue(withHeader);
    }

    private void Receive(Virtqueue queue)
    {
        if (!queue.Enabled)
        {
            // Nowhere to put frames: stop polling the TAP until the driver notifies this queue.
            _rxStalled = true;
            return;
        }

        for (int frames = 0; frames < ReceiveBatch; frames++)
        {
            if (_rxPending == 0 && _injected.TryDequeue(out byte[]? injected))
            {
                injected.CopyTo(_rxFrame, 0);
                _rxPending = injected.Length;
            }

            if (_rxPending == 0)
            {
                _rxPending = _tap.Read(_rxFrame);
                if (_rxPending == 0)
                {
                    break;
                }
            }

            if (!_rxAdmitted && !Admit(RxRateLimiter, _rxPending - HeaderSize, ReceiveQueue))
            {
                // Over the limit: the frame waits here, the TAP is not polled, the retry timer resumes.
                _rxStalled = true;
                break;
            }

            // Counted once even if it must wait for receive buffers.
            _rxAdmitted = true;
            if (!Deliver(queue, _rxFrame.AsSpan(0, _rxPending)))
            {
                // No room: keep the frame and stop polling the TAP until the driver posts buffers.
                _rxStalled = true;
                break;
            }

            _rxPending = 0;
            _rxAdmitted = false;
        }

        SignalIfNeeded(queue);
    }

    /// <summary>Copies one frame (header included) into one chain, or several with mergeable buffers.</summary>
    private bool Deliver(Virtqueue queue, Span<byte> frame)
    {
        bool mergeable = HasFeature(FeatureMergeableRxBuffers);
        _rxChains.Clear();
        ulong room = 0;
        while (room < (ulong)frame.Length)
        {
            if (!queue.TryPop(out DescriptorChain chain))
            {
                if (queue.EnableNotifications() && queue.TryPop(out chain))
                {
                    // buffers arrived while notifications were being re-enabled
                }
                else
                {
                    queue.UndoPop(_rxChains.Count);
                    return false;
                }
            }

            _rxChains.Add(chain);
            room += chain.WritableLength;
            if (!mergeable)
            {
                break;
            }
        }

        if (room < (ulong)frame.Length || (_rxChains.Count > 1 && _rxChains[0].WritableLength < HeaderSize))
        {
            // A buffer too small for the frame (the driver did not ask for big frames): drop it.
            RxDropped++;
            foreach (DescriptorChain c in _rxChains)
            {
                queue.PushUsed(c.Head, 0, publish: false);
            }

            queue.PublishUsed();
            return true;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(frame[10..], (ushort)_rxChains.Count); // num_buffers
        int offset = 0;
        foreach (DescriptorChain c in _rxChains)
        {
            int written = c.CopyToWritable(0, frame[offset..]);
            offset += written;
            queue.PushUsed(c.Head, (uint)written, publish: false);
        }

        // Counted before the driver can see the frame, so whoever sees it used sees it counted.
        RxFrames++;
        IoCounters.AddRead(frame.Length - HeaderSize);
        queue.PublishUsed();
        return true;
    }

    protected override void SaveDeviceState(SnapshotWriter w) => w.Write(_linkUp);

    protected override void LoadDeviceState(SnapshotReader r) => _linkUp = r.ReadBoolean();
}
