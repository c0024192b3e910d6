using System.Buffers.Binary;

namespace SharpVisor.Xen;

/// <summary>
/// blkback's requests (xen/include/public/io/blkif.h), whoever runs the ring: Dom0's
/// <see cref="XenBlockBackend"/> in the front end's VMM, or <see cref="XenDriverBlockBackend"/> in a
/// driver domain. A request is copied into <see cref="Request"/> once and checked (segments, sector
/// ranges against the disk) before any byte moves; its data moves by grant copy through
/// <see cref="IXenGrantCopies"/> (refusals throw <see cref="GrantTableException"/> and answer ERROR).
/// </summary>
internal sealed class XenBlkifRequests
{
    private const int PageSize = 4096;
    private const int MaxLoggedErrors = 10;

    private readonly IXenDiskImage _image;
    private readonly IXenGrantCopies _grants;
    private readonly Action<string> _log;
    private readonly byte[] _data = new byte[XenBlockBackend.MaxIndirectSegments * PageSize];

    /// <summary>The segments of the request being served, copied out of the ring or the indirect pages once.</summary>
    private readonly byte[] _segments = new byte[XenBlockBackend.MaxIndirectSegments * XenBlockBackend.SegmentSize];

    public XenBlkifRequests(IXenDiskImage image, IXenGrantCopies grants, Machine.ExitCounters counters, Action<string> log)
    {
        _image = image;
        _grants = grants;
        Counters = counters;
        _log = log;
    }

    /// <summary>The request being served: the ring slot's bytes, copied out once.</summary>
    public byte[] Request { get; } = new byte[XenBlockBackend.EntrySize];

    public long CapacitySectors => _image.Size / XenBlockBackend.SectorSize;

    private Machine.ExitCounters Counters { get; }

    /// <summary>One request, already copied out of the ring into <see cref="Request"/>: its status.</summary>
    public short Handle(byte op)
    {
        Counters.Increment("requests");
        try
        {
            switch (op)
            {
                case XenBlockBackend.OpRead:
                case XenBlockBackend.OpWrite:
                    return DirectReadWrite(op == XenBlockBackend.OpWrite);

                case XenBlockBackend.OpIndirect:
                    return IndirectReadWrite();

                case XenBlockBackend.OpFlushDiskCache:
                    _image.Flush();
                    Counters.Increment("flushes");
                    return XenBlockBackend.StatusOkay;

                case XenBlockBackend.OpDiscard:
                    return Discard();

                default:
                    // Barriers are not offered; anything else is unknown.
                    return Refuse(XenBlockBackend.StatusNotSupported, $"operation {op} is not supported");
            }
        }
        catch (GrantTableException e)
        {
            return Refuse(XenBlockBackend.StatusError, $"grant: {e.Message}");
        }
        catch (IOException e)
        {
            return Refuse(XenBlockBackend.StatusError, $"disk: {e.Message}");
        }
    }

    /// <summary>blkifRequest_rw: nr_segments at 1, sector_number at 16, up to 11 segments from 24.</summary>
    private short DirectReadWrite(bool write)
    {
        int segments = Request[1];
        if (segments is 0 or > XenBlockBackend.MaxSegments)
        {
            return Refuse(XenBlockBackend.StatusError, $"{segments} segments");
        }

        Request.AsSpan(24, segments * XenBlockBackend.SegmentSize).CopyTo(_segments);
        return ReadWrite(write, BinaryPrimitives.ReadUInt64LittleEndian(Request.AsSpan(16)), segments);
    }

    /// <summary>
    /// blkifRequest_indirect (x86_64, packed): indirect_op at 1, nr_segments (16 bits) at 2,
    /// sector_number at 16, indirect_grefs[8] at 28. The segments live in the pages those grants
    /// name (512 per page); each page is grant-copied out once, then the request is a read or
    /// write like a direct one.
    /// </summary>
    private short IndirectReadWrite()
    {
        byte op = Request[1];
        int segments = BinaryPrimitives.ReadUInt16LittleEndian(Request.AsSpan(2));
        if (op is not (XenBlockBackend.OpRead or XenBlockBackend.OpWrite))
        {
            return Refuse(XenBlockBackend.StatusError, $"indirect operation {op} is not a read or a write");
        }

        if (segments is 0 or > XenBlockBackend.MaxIndirectSegments)
        {
            return Refuse(XenBlockBackend.StatusError, $"{segments} indirect segments (at most {XenBlockBackend.MaxIndirectSegments})");
        }

        const int PerPage = PageSize / XenBlockBackend.SegmentSize;
        int pages = (segments + PerPage - 1) / PerPage;
        for (int p = 0; p < pages; p++)
        {
            uint grant = BinaryPrimitives.ReadUInt32LittleEndian(Request.AsSpan(28 + (p * 4)));
            int length = Math.Min(segments - (p * PerPage), PerPage) * XenBlockBackend.SegmentSize;
            _grants.CopyFrom(grant, 0, _segments.AsSpan(p * PageSize, length));
        }

        short status = ReadWrite(op == XenBlockBackend.OpWrite, BinaryPrimitives.ReadUInt64LittleEndian(Request.AsSpan(16)), segments);
        if (status == XenBlockBackend.StatusOkay)
        {
            Counters.Increment("indirect-requests");
        }

        return status;
    }

    /// <summary>
    /// A read or write of <paramref name="segments"/> segments { gref, first_sect, last_sect }
    /// (already in <see cref="_segments"/>) from <paramref name="sector"/>. Every segment is
    /// checked, and the whole range against the disk, before any byte moves.
    /// </summary>
    private short ReadWrite(bool write, ulong sector, int segments)
    {
        int bytes = 0;
        for (int i = 0; i < segments; i++)
        {
            int first = _segments[4 + (i * XenBlockBackend.SegmentSize)];
            int last = _segments[5 + (i * XenBlockBackend.SegmentSize)];
            if (first > last || last >= PageSize / XenBlockBackend.SectorSize)
            {
                return Refuse(XenBlockBackend.StatusError, $"segment {i} sectors {first}..{last} leave the page");
            }

            bytes += (last - first + 1) * XenBlockBackend.SectorSize;
        }

        ulong count = (ulong)(bytes / XenBlockBackend.SectorSize);
        if (sector > (ulong)CapacitySectors || count > (ulong)CapacitySectors - sector)
        {
            return Refuse(XenBlockBackend.StatusError, $"sectors {sector}+{count} are beyond the disk's {CapacitySectors}");
        }

        if (write && _image.ReadOnly)
        {
            return Refuse(XenBlockBackend.StatusError, "write to a read-only disk");
        }

        long offset = (long)sector * XenBlockBackend.SectorSize;
        Span<byte> data = _data.AsSpan(0, bytes);
        if (!write)
        {
            _image.Read(offset, data);
        }

        int at = 0;
        for (int i = 0; i < segments; i++)
        {
            uint grant = BinaryPrimitives.ReadUInt32LittleEndian(_segments.AsSpan(i * XenBlockBackend.SegmentSize));
            int first = _segments[4 + (i * XenBlockBackend.SegmentSize)];
            int length = (_segments[5 + (i * XenBlockBackend.SegmentSize)] - first + 1) * XenBlockBackend.SectorSize;
            if (write)
            {
                _grants.CopyFrom(grant, first * XenBlockBackend.SectorSize, data.Slice(at, length));
            }
            else
            {
                _grants.CopyTo(grant, first * XenBlockBackend.SectorSize, data.Slice(at, length));
            }

            at += length;
        }

        if (write)
        {
            _image.Write(offset, data);
            Counters.Add("write-bytes", bytes);
        }
        else
        {
            Counters.Add("read-bytes", bytes);
        }

        Counters.Increment(write ? "writes" : "reads");
        return XenBlockBackend.StatusOkay;
    }

    /// <summary>blkifRequest_discard: sector_number at 16, nr_sectors at 24.</summary>
    private short Discard()
    {
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(Request.AsSpan(16));
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(Request.AsSpan(24));
        if (_image.ReadOnly)
        {
            return Refuse(XenBlockBackend.StatusNotSupported, "discard on a read-only disk");
        }

        if (sector > (ulong)CapacitySectors || count > (ulong)CapacitySectors - sector)
        {
            return Refuse(XenBlockBackend.StatusError, $"discard of sectors {sector}+{count} beyond the disk's {CapacitySectors}");
        }

        if (count > 0)
        {
            _image.Discard((long)sector * XenBlockBackend.SectorSize, (long)count * XenBlockBackend.SectorSize);
        }

        Counters.Increment("discards");
        return XenBlockBackend.StatusOkay;
    }

    private short Refuse(short status, string reason)
    {
        Counters.Increment("errors");
        if (Counters["errors"] <= MaxLoggedErrors)
        {
            _log($"request refused: {reason}");
        }

        return status;
    }
}
