using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using SharpVisor.Interop;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// virtio-blk (virtio 1.x §5.2) over a <see cref="RawDiskImage"/>: read, write, flush (fsync),
/// get-id, discard and write-zeroes, or a read-only disk. One request queue. Each request is
/// a 16-byte header, data, and a status byte that the device writes last. When a completed
/// write is durable depends on <see cref="CacheMode"/> and on whether the driver negotiated
/// FLUSH: a driver without FLUSH gets a write-through disk unless the mode is Unsafe.
/// Reads and writes the host's page cache can take without waiting (RWF_NOWAIT) complete on the
/// notifying vCPU's thread; the rest, flushes, discards and write-zeroes go to the worker.
/// </summary>
public sealed unsafe class VirtioBlockDevice : VirtioDevice
{
    public const ulong FeatureSegMax = 1UL << 2;
    public const ulong FeatureReadOnly = 1UL << 5;
    public const ulong FeatureBlockSize = 1UL << 6;
    public const ulong FeatureFlush = 1UL << 9;
    public const ulong FeatureDiscard = 1UL << 13;
    public const ulong FeatureWriteZeroes = 1UL << 14;

    public const uint RequestIn = 0;
    public const uint RequestOut = 1;
    public const uint RequestFlush = 4;
    public const uint RequestGetId = 8;
    public const uint RequestDiscard = 11;
    public const uint RequestWriteZeroes = 13;

    public const byte StatusOk = 0;
    public const byte StatusIoError = 1;
    public const byte StatusUnsupported = 2;

    public const int SectorSize = 512;
    public const int HeaderSize = 16;
    public const int IdBytes = 20;
    public const int DiscardSegmentSize = 16;
    public const uint MaxDiscardSectors = 1u << 22;
    public const uint MaxDiscardSegments = 1;

    /// <summary>Largest read or write done on a vCPU thread: bounds how long a notification can stall the vCPU.</summary>
    public const ulong MaxInlineBytes = 4UL << 20;

    private const int ConfigLength = 60;

    private RawDiskImage _image;
    private readonly byte[] _id;
    private readonly List<VirtqBuffer> _segments = new();
    private IoVector[] _vectors = new IoVector[16];

    public VirtioBlockDevice(GuestMemory memory, RawDiskImage image, string serial = "sharpvisor", ushort queueSize = 256, DiskCacheMode cacheMode = DiskCacheMode.Writeback)
        : base(VirtioDeviceType.Block, memory, 1, queueSize,
            FeatureSegMax | FeatureBlockSize | FeatureFlush | (image.ReadOnly ? FeatureReadOnly : FeatureDiscard | FeatureWriteZeroes))
    {
        _image = image;
        CacheMode = cacheMode;
        CapacitySectors = (ulong)image.Size / SectorSize;
        _id = new byte[IdBytes];
        Encoding.ASCII.GetBytes(serial.AsSpan(0, Math.Min(serial.Length, IdBytes)), _id);
    }

    public DiskCacheMode CacheMode { get; }

    /// <summary>Writes must be durable before they complete: the driver has no FLUSH to ask for it later.</summary>
    public bool WriteThrough => CacheMode == DiskCacheMode.Writeback && !HasFeature(FeatureFlush);

    /// <summary>Disk size in 512-byte sectors (the image size rounded down).</summary>
    public ulong CapacitySectors { get; private set; }

    /// <summary>The image is opened read-only (VIRTIO_BLK_F_RO was offered).</summary>
    public bool ReadOnly => _image.ReadOnly;

    /// <summary>
    /// Swaps the backing file (Firecracker's PATCH /drives path_on_host) between two requests;
    /// the guest is told the new capacity through a configuration change. The read-only feature
    /// was fixed at negotiation, so the new image must match it. Returns the old image for the caller to close.
    /// </summary>
    public RawDiskImage ReplaceImage(RawDiskImage image)
    {
        if (image.ReadOnly != _image.ReadOnly)
        {
            throw new ArgumentException("the new image must be opened read-only exactly when the old one was");
        }

        RawDiskImage previous;
        lock (Lock)
        {
            previous = _image;
            _image = image;
            CapacitySectors = (ulong)image.Size / SectorSize;
        }

        ConfigChanged();
        return previous;
    }

    public override int ConfigSize => ConfigLength;

    public override void ReadConfig(int offset, Span<byte> data)
    {
        Span<byte> config = stackalloc byte[ConfigLength];
        config.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(config[0..], CapacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(config[12..], (uint)(Queues[0].MaxSize - 2)); // seg_max: header and status take two
        BinaryPrimitives.WriteUInt32LittleEndian(config[20..], SectorSize); // blk_size
        BinaryPrimitives.WriteUInt16LittleEndian(config[34..], 1); // num_queues
        BinaryPrimitives.WriteUInt32LittleEndian(config[36..], MaxDiscardSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(config[40..], MaxDiscardSegments);
        BinaryPrimitives.WriteUInt32LittleEndian(config[44..], 1); // discard_sector_alignment
        BinaryPrimitives.WriteUInt32LittleEndian(config[48..], MaxDiscardSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(config[52..], MaxDiscardSegments);
        config[56] = 1; // write_zeroes_may_unmap
        config.Slice(offset, data.Length).CopyTo(data);
    }

    /// <summary>Firecracker's rate_limiter: one op per request, its data bytes against the bandwidth bucket. Swappable while running.</summary>
    public RateLimiting.RateLimiter? RateLimiter { get; set; }

    protected override void ProcessQueue(Virtqueue queue)
    {
        RateLimiting.RateLimiter? limiter = RateLimiter;
        DrainQueue(queue, chain => HandleRequest(chain, inline: false) ?? 0, limiter is null ? null :
            chain => Admit(limiter, (long)(chain.ReadableLength + chain.WritableLength) - HeaderSize - 1, queue.Index));
    }

    protected override bool ServesInline => true;

    // A rate-limited disk is served by its worker alone, where requests wait for their tokens.
    protected override bool ProcessQueueInline(Virtqueue queue) =>
        RateLimiter is null && DrainQueueInline(queue, chain => HandleRequest(chain, inline: true));

    /// <summary>Serves one request; the bytes written into the chain, or (only when <paramref name="inline"/>) null when it would block.</summary>
    private uint? HandleRequest(DescriptorChain chain, bool inline)
    {
        if (chain.WritableLength < 1)
        {
            // Without a status byte the request cannot even be failed: the driver is broken.
            Fail($"request at head {chain.Head} has no writable status byte");
            return 0;
        }

        ulong statusOffset = chain.WritableLength - 1;
        uint written = 1;
        byte status;
        if (chain.ReadableLength < HeaderSize)
        {
            status = StatusIoError;
        }
        else
        {
            Span<byte> header = stackalloc byte[HeaderSize];
            chain.CopyFromReadable(0, header);
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
            if (inline && type is RequestFlush or RequestDiscard or RequestWriteZeroes)
            {
                return null;
            }

            try
            {
                byte? result = type switch
                {
                    RequestIn => Read(chain, sector, statusOffset, ref written, inline),
                    RequestOut => Write(chain, sector, inline),
                    RequestFlush => Flush(),
                    RequestGetId => GetId(chain, statusOffset, ref written),
                    RequestDiscard => DiscardOrZero(chain, FeatureDiscard, isDiscard: true),
                    RequestWriteZeroes => DiscardOrZero(chain, FeatureWriteZeroes, isDiscard: false),
                    _ => StatusUnsupported,
                };
                if (result is null)
                {
                    return null;
                }

                status = result.Value;
            }
            catch (IOException e)
            {
                Log?.Write($"{Name}: I/O error: {e.Message}");
                status = StatusIoError;
                written = 1;
            }
        }

        // The status byte goes last, after all data is in place.
        chain.CopyToWritable(statusOffset, [status]);
        return written;
    }

    /// <summary>The host addresses of <see cref="_segments"/> (checked against guest memory when the chain was read).</summary>
    private ReadOnlySpan<IoVector> HostVectors()
    {
        if (_vectors.Length < _segments.Count)
        {
            _vectors = new IoVector[Math.Max(_segments.Count, _vectors.Length * 2)];
        }

        for (int i = 0; i < _segments.Count; i++)
        {
            VirtqBuffer s = _segments[i];
            Span<byte> guest = Memory.GetSpan(s.Address, s.Length);
            _vectors[i] = new IoVector { Base = Unsafe.AsPointer(ref MemoryMarshal.GetReference(guest)), Length = (nuint)guest.Length };
        }

        return _vectors.AsSpan(0, _segments.Count);
    }

    private bool InRange(ulong sector, ulong bytes) =>
        bytes % SectorSize == 0 && sector <= CapacitySectors && bytes / SectorSize <= CapacitySectors - sector;

    private byte? Read(DescriptorChain chain, ulong sector, ulong dataLength, ref uint written, bool inline)
    {
        if (!InRange(sector, dataLength))
        {
            return StatusIoError;
        }

        if (inline && dataLength > MaxInlineBytes)
        {
            return null;
        }

        chain.GetSegments(writable: true, 0, dataLength, _segments);
        if (!_image.ReadVectored((long)(sector * SectorSize), HostVectors(), noWait: inline))
        {
            return null;
        }

        foreach (VirtqBuffer s in _segments)
        {
            Memory.NotifyExternalWrite(s.Address, (ulong)s.Length); // a read into pages that held code
        }

        written = (uint)dataLength + 1;
        IoCounters.AddRead((long)dataLength);
        return StatusOk;
    }

    private byte? Write(DescriptorChain chain, ulong sector, bool inline)
    {
        ulong dataLength = chain.ReadableLength - HeaderSize;
        if (_image.ReadOnly || !InRange(sector, dataLength))
        {
            return StatusIoError;
        }

        // A write-through write waits for the disk by definition.
        if (inline && (dataLength > MaxInlineBytes || WriteThrough))
        {
            return null;
        }

        chain.GetSegments(writable: false, HeaderSize, dataLength, _segments);
        if (!_image.WriteVectored((long)(sector * SectorSize), HostVectors(), noWait: inline))
        {
            return null;
        }

        SyncIfWriteThrough();
        IoCounters.AddWrite((long)dataLength);
        return StatusOk;
    }

    private byte Flush()
    {
        if (!HasFeature(FeatureFlush))
        {
            return StatusUnsupported;
        }

        _image.Flush();
        IoCounters.AddWrite(0);
        return StatusOk;
    }

    private byte GetId(DescriptorChain chain, ulong dataLength, ref uint written)
    {
        int length = (int)Math.Min((ulong)IdBytes, dataLength);
        chain.CopyToWritable(0, _id.AsSpan(0, length));
        written = (uint)length + 1;
        return StatusOk;
    }

    private byte DiscardOrZero(DescriptorChain chain, ulong feature, bool isDiscard)
    {
        if (!HasFeature(feature))
        {
            return StatusUnsupported;
        }

        ulong payload = chain.ReadableLength - HeaderSize;
        if (_image.ReadOnly || payload == 0 || payload % DiscardSegmentSize != 0 || payload / DiscardSegmentSize > MaxDiscardSegments)
        {
            return StatusIoError;
        }

        Span<byte> segment = stackalloc byte[DiscardSegmentSize];
        for (ulong at = HeaderSize; at < chain.ReadableLength; at += DiscardSegmentSize)
        {
            chain.CopyFromReadable(at, segment);
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(segment);
            uint sectors = BinaryPrimitives.ReadUInt32LittleEndian(segment[8..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(segment[12..]);
            if ((flags & ~1u) != 0 || (isDiscard && flags != 0))
            {
                return StatusUnsupported;
            }

            if (sectors > MaxDiscardSectors || !InRange(sector, (ulong)sectors * SectorSize))
            {
                return StatusIoError;
            }

            long offset = (long)(sector * SectorSize);
            long length = (long)sectors * SectorSize;
            if (isDiscard)
            {
                _image.Discard(offset, length);
            }
            else
            {
                _image.WriteZeroes(offset, length, unmap: (flags & 1) != 0);
            }
        }

        SyncIfWriteThrough();
        return StatusOk;
    }

    private void SyncIfWriteThrough()
    {
        if (WriteThrough)
        {
            _image.SyncData();
        }
    }
}
