using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// A validated descriptor chain popped from a split virtqueue: its head index and the guest
/// buffers it names, readable ones first. Every descriptor was checked when the chain was
/// read — index below the table size, address and length inside guest memory, at most
/// queue-size descriptors (no loops), indirect tables well-formed and not nested, no readable
/// buffer after a writable one — so the helpers here only copy.
/// </summary>
public sealed class DescriptorChain
{
    public const int DescriptorSize = 16;
    public const ushort FlagNext = 1;
    public const ushort FlagWrite = 2;
    public const ushort FlagIndirect = 4;

    private readonly List<VirtqBuffer> _buffers;

    private DescriptorChain(GuestMemory memory, ushort head, List<VirtqBuffer> buffers, ulong readable, ulong writable)
    {
        Memory = memory;
        Head = head;
        _buffers = buffers;
        ReadableLength = readable;
        WritableLength = writable;
    }

    public GuestMemory Memory { get; }

    /// <summary>The head descriptor index, which goes back in the used ring.</summary>
    public ushort Head { get; }

    public IReadOnlyList<VirtqBuffer> Buffers => _buffers;

    public ulong ReadableLength { get; }

    public ulong WritableLength { get; }

    /// <summary>
    /// Reads and validates the chain starting at <paramref name="head"/>; throws <see cref="VirtqueueException"/>.
    /// An indirect table may hold up to <paramref name="maxIndirect"/> entries (the device's maximum
    /// queue size: Linux may build indirect chains longer than a queue it shrank).
    /// </summary>
    public static DescriptorChain Read(GuestMemory memory, ulong descriptorTable, int queueSize, ushort head, bool indirectAllowed, int maxIndirect = 0)
    {
        maxIndirect = Math.Max(maxIndirect, queueSize);
        if (head >= queueSize)
        {
            throw new VirtqueueException($"head descriptor index {head} is not below the queue size {queueSize}");
        }

        var buffers = new List<VirtqBuffer>(4);
        ulong table = descriptorTable;
        int tableSize = queueSize;
        int limit = queueSize;
        int count = 0;
        int index = head;
        bool inIndirect = false;
        bool seenWritable = false;
        ulong readable = 0;
        ulong writable = 0;
        Span<byte> descriptor = stackalloc byte[DescriptorSize];

        while (true)
        {
            if (++count > limit)
            {
                throw new VirtqueueException($"descriptor chain from head {head} is longer than {limit} descriptors (a loop?)");
            }

            ulong at = table + ((ulong)index * DescriptorSize);
            if (!memory.TryGetSpan(at, DescriptorSize, out Span<byte> raw))
            {
                throw new VirtqueueException($"descriptor {index} at 0x{at:x} is outside guest memory");
            }

            raw.CopyTo(descriptor);
            ulong address = BitConverter.ToUInt64(descriptor);
            uint length = BitConverter.ToUInt32(descriptor[8..]);
            ushort flags = BitConverter.ToUInt16(descriptor[12..]);
            ushort next = BitConverter.ToUInt16(descriptor[14..]);

            if ((flags & FlagIndirect) != 0)
            {
                if (inIndirect)
                {
                    throw new VirtqueueException($"nested indirect descriptor in chain from head {head}");
                }

                if (!indirectAllowed)
                {
                    throw new VirtqueueException("indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
                }

                if ((flags & FlagNext) != 0)
                {
                    throw new VirtqueueException("indirect descriptor also has VIRTQ_DESC_F_NEXT");
                }

                // Drivers put an indirect table only at the head; anything else is refused.
                if (count != 1)
                {
                    throw new VirtqueueException($"indirect descriptor in the middle of the chain from head {head}");
                }

                if (length == 0 || length % DescriptorSize != 0 || length / DescriptorSize > (uint)maxIndirect)
                {
                    throw new VirtqueueException($"indirect table length {length} is not a non-zero multiple of 16 up to {maxIndirect} entries");
                }

                if (!memory.IsValid(address, length))
                {
                    throw new VirtqueueException($"indirect table 0x{address:x}+0x{length:x} is outside guest memory");
                }

                table = address;
                tableSize = (int)(length / DescriptorSize);
                limit = tableSize;
                count = 0;
                index = 0;
                inIndirect = true;
                continue;
            }

            bool isWritable = (flags & FlagWrite) != 0;
            if (!isWritable && seenWritable)
            {
                throw new VirtqueueException($"readable descriptor after a writable one in chain from head {head}");
            }

            if (length > int.MaxValue)
            {
                throw new VirtqueueException($"descriptor length 0x{length:x} is too large");
            }

            if (length != 0)
            {
                if (!memory.IsValid(address, length))
                {
                    throw new VirtqueueException($"buffer 0x{address:x}+0x{length:x} is outside guest memory");
                }

                if (isWritable && !memory.AllowsDeviceWrite(address, length))
                {
                    // DMA into the guest's locked kernel (text, read-only data): refused, reported by the guard.
                    throw new VirtqueueException($"device-writable buffer 0x{address:x}+0x{length:x} is in protected guest memory");
                }

                buffers.Add(new VirtqBuffer(address, (int)length, isWritable));
            }

            seenWritable |= isWritable;
            if (isWritable)
            {
                writable += length;
            }
            else
            {
                readable += length;
            }

            if ((flags & FlagNext) == 0)
            {
                break;
            }

            if (next >= tableSize)
            {
                throw new VirtqueueException($"next index {next} is not below the table size {tableSize}");
            }

            index = next;
        }

        return new DescriptorChain(memory, head, buffers, readable, writable);
    }

    /// <summary>Copies readable bytes from logical <paramref name="offset"/> on; returns how many were copied.</summary>
    public int CopyFromReadable(ulong offset, Span<byte> destination) => Copy(false, offset, destination, default);

    /// <summary>Copies into writable bytes from logical <paramref name="offset"/> on; returns how many were copied.</summary>
    public int CopyToWritable(ulong offset, ReadOnlySpan<byte> source) => Copy(true, offset, default, source);

    /// <summary>
    /// The guest ranges backing [<paramref name="offset"/>, +<paramref name="length"/>) of the readable
    /// or writable part, for zero-copy I/O straight into guest memory.
    /// </summary>
    public void GetSegments(bool writable, ulong offset, ulong length, List<VirtqBuffer> segments)
    {
        segments.Clear();
        ulong position = 0;
        foreach (VirtqBuffer b in _buffers)
        {
            if (b.Writable != writable || length == 0)
            {
                continue;
            }

            ulong end = position + (ulong)b.Length;
            if (end > offset)
            {
                ulong skip = offset > position ? offset - position : 0;
                ulong take = Math.Min((ulong)b.Length - skip, length);
                segments.Add(new VirtqBuffer(b.Address + skip, (int)take, writable));
                length -= take;
                offset += take;
            }

            position = end;
        }
    }

    private int Copy(bool writable, ulong offset, Span<byte> destination, ReadOnlySpan<byte> source)
    {
        int total = writable ? source.Length : destination.Length;
        int done = 0;
        ulong position = 0;
        foreach (VirtqBuffer b in _buffers)
        {
            if (b.Writable != writable || done == total)
            {
                continue;
            }

            ulong end = position + (ulong)b.Length;
            if (end > offset)
            {
                int skip = (int)(offset > position ? offset - position : 0);
                int take = Math.Min(b.Length - skip, total - done);
                Span<byte> guest = Memory.GetSpan(b.Address + (ulong)skip, take);
                if (writable)
                {
                    source.Slice(done, take).CopyTo(guest);
                    Memory.NotifyExternalWrite(b.Address + (ulong)skip, (ulong)take);
                }
                else
                {
                    guest.CopyTo(destination.Slice(done, take));
                }

                done += take;
                offset += (ulong)take;
            }

            position = end;
        }

        return done;
    }
}
