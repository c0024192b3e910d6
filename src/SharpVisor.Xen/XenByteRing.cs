using System.Runtime.CompilerServices;
using SharpVisor.Memory;

namespace SharpVisor.Xen;

/// <summary>
/// One direction of a Xen byte ring in a shared page (the console's `in`/`out`, XenStore's
/// `req`/`rsp`): a power-of-two data area and free-running 32-bit consumer and producer
/// indices. The indices are the guest's to change at any time, so every operation reads them
/// once and refuses (returns false) when they are more than a ring apart; the caller fails its
/// back end with <see cref="Describe"/>.
/// </summary>
public sealed class XenByteRing
{
    private readonly GuestMemory _memory;
    private readonly ulong _page;
    private readonly int _dataOffset;
    private readonly int _consumerOffset;
    private readonly int _producerOffset;

    /// <param name="page">The shared page, already checked to be a page of guest RAM.</param>
    public XenByteRing(GuestMemory memory, ulong page, int dataOffset, int size, int consumerOffset, int producerOffset)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (size <= 0 || (size & (size - 1)) != 0 || dataOffset < 0 || dataOffset + size > 4096
            || consumerOffset < 0 || consumerOffset + 4 > 4096 || producerOffset < 0 || producerOffset + 4 > 4096)
        {
            throw new ArgumentException("the ring's data and indices must lie in its page, and its size be a power of two");
        }

        _memory = memory;
        _page = page;
        _dataOffset = dataOffset;
        Size = size;
        _consumerOffset = consumerOffset;
        _producerOffset = producerOffset;
    }

    public int Size { get; }

    /// <summary>The bytes produced and not consumed yet; false when the indices are more than a ring apart.</summary>
    public bool TryGetUnread(out int unread)
    {
        Span<byte> page = Page;
        uint pending = Volatile.Read(ref Index(page, _producerOffset)) - Volatile.Read(ref Index(page, _consumerOffset));
        unread = pending <= (uint)Size ? (int)pending : 0;
        return pending <= (uint)Size;
    }

    /// <summary>Consumer side: takes up to <paramref name="destination"/>.Length unread bytes and advances the consumer index.</summary>
    public bool TryRead(Span<byte> destination, out int read)
    {
        read = 0;
        Span<byte> page = Page;
        uint consumer = Volatile.Read(ref Index(page, _consumerOffset));
        uint producer = Volatile.Read(ref Index(page, _producerOffset));
        uint pending = producer - consumer;
        if (pending > (uint)Size)
        {
            return false;
        }

        read = (int)Math.Min(pending, (uint)destination.Length);
        for (int i = 0; i < read; i++)
        {
            destination[i] = page[_dataOffset + (int)((consumer + (uint)i) & (uint)(Size - 1))];
        }

        Volatile.Write(ref Index(page, _consumerOffset), consumer + (uint)read);
        return true;
    }

    /// <summary>Producer side: writes as much of <paramref name="source"/> as there is room for and advances the producer index.</summary>
    public bool TryWrite(ReadOnlySpan<byte> source, out int written)
    {
        written = 0;
        Span<byte> page = Page;
        uint consumer = Volatile.Read(ref Index(page, _consumerOffset));
        uint producer = Volatile.Read(ref Index(page, _producerOffset));
        uint used = producer - consumer;
        if (used > (uint)Size)
        {
            return false;
        }

        written = (int)Math.Min((uint)Size - used, (uint)source.Length);
        for (int i = 0; i < written; i++)
        {
            page[_dataOffset + (int)((producer + (uint)i) & (uint)(Size - 1))] = source[i];
        }

        Volatile.Write(ref Index(page, _producerOffset), producer + (uint)written);
        return true;
    }

    /// <summary>The indices as they are now, for a failure message.</summary>
    public string Describe()
    {
        Span<byte> page = Page;
        return $"cons {Volatile.Read(ref Index(page, _consumerOffset))} prod {Volatile.Read(ref Index(page, _producerOffset))}";
    }

    private Span<byte> Page => _memory.GetSpan(_page, 4096);

    private static ref uint Index(Span<byte> page, int offset) => ref Unsafe.As<byte, uint>(ref page[offset]);
}
