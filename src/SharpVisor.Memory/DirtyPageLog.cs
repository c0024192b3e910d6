namespace SharpVisor.Memory;

/// <summary>
/// Which RAM pages were written since the log was last fetched: one bit per 4 KiB page of the
/// guest's RAM regions, numbered as in the memory file (the region below the MMIO hole from bit
/// 0, the one from 4 GiB right after). Every writer marks it — the emulator's vCPUs when a TLB
/// entry gets write access and on each slow-path store, device DMA through
/// <see cref="GuestMemory.NotifyExternalWrite"/>, KVM's KVM_GET_DIRTY_LOG merged in by the
/// accelerator — and a snapshot or a migration round takes it with <see cref="FetchAndClear"/>
/// (docs/snapshot.md, docs/migration.md). Marks from any thread; lock-free.
/// </summary>
public sealed class DirtyPageLog
{
    private readonly Span[] _spans;
    private readonly ulong[] _bits;

    public DirtyPageLog(IEnumerable<MemoryRegion> ram)
    {
        ArgumentNullException.ThrowIfNull(ram);
        var spans = new List<Span>();
        ulong first = 0;
        foreach (MemoryRegion region in ram)
        {
            spans.Add(new Span(region.GuestPhysicalAddress, region.Size, region.HostAddress, first));
            first += region.Size / MemoryRegion.PageSize;
        }

        _spans = spans.ToArray();
        PageCount = first;
        _bits = new ulong[(first + 63) / 64];
    }

    /// <summary>RAM pages the log covers (bits in a fetched bitmap).</summary>
    public ulong PageCount { get; }

    /// <summary>Marks every page [address, address + length) touches; addresses outside RAM are ignored.</summary>
    public void Mark(ulong address, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        foreach (Span span in _spans)
        {
            ulong start = Math.Max(address, span.Address);
            ulong end = Math.Min(address + length, span.Address + span.Size);
            if (address + length < address)
            {
                end = span.Address + span.Size; // wrapped: to the end of every region above
            }

            if (start >= end)
            {
                continue;
            }

            for (ulong page = (start - span.Address) >> 12; page <= (end - 1 - span.Address) >> 12; page++)
            {
                SetBit(span.FirstPage + page);
            }
        }
    }

    /// <summary>Marks the page holding host address <paramref name="host"/> inside guest RAM (page-table A/D updates through a host pointer).</summary>
    public void MarkHost(nint host)
    {
        foreach (Span span in _spans)
        {
            if (host >= span.Host && (ulong)(host - span.Host) < span.Size)
            {
                SetBit(span.FirstPage + ((ulong)(host - span.Host) >> 12));
                return;
            }
        }
    }

    /// <summary>Marks pages by index (a bitmap another tracker produced, KVM's per slot).</summary>
    public void MarkBitmap(ulong firstPage, ReadOnlySpan<ulong> bitmap)
    {
        for (int i = 0; i < bitmap.Length; i++)
        {
            ulong word = bitmap[i];
            while (word != 0)
            {
                int bit = System.Numerics.BitOperations.TrailingZeroCount(word);
                word &= word - 1;
                ulong page = firstPage + (ulong)(i * 64 + bit);
                if (page < PageCount)
                {
                    SetBit(page);
                }
            }
        }
    }

    /// <summary>Marks every page (the first round of a migration sends everything).</summary>
    public void MarkAll()
    {
        for (ulong page = 0; page < PageCount; page++)
        {
            SetBit(page);
        }
    }

    /// <summary>
    /// The pages marked since the previous call, and clears them: word by word atomically, so a
    /// mark racing with the fetch lands in this bitmap or the next one, never in neither.
    /// </summary>
    public ulong[] FetchAndClear()
    {
        var taken = new ulong[_bits.Length];
        for (int i = 0; i < _bits.Length; i++)
        {
            taken[i] = Volatile.Read(ref _bits[i]) == 0 ? 0 : Interlocked.Exchange(ref _bits[i], 0);
        }

        return taken;
    }

    /// <summary>The guest-physical address of page index <paramref name="page"/>.</summary>
    public ulong AddressOf(ulong page)
    {
        foreach (Span span in _spans)
        {
            if (page >= span.FirstPage && page < span.FirstPage + (span.Size >> 12))
            {
                return span.Address + ((page - span.FirstPage) << 12);
            }
        }

        throw new ArgumentOutOfRangeException(nameof(page), $"page {page} is beyond the {PageCount} pages of RAM");
    }

    /// <summary>The page indexes set in a fetched bitmap, in order.</summary>
    public static IEnumerable<ulong> PagesIn(ulong[] bitmap)
    {
        for (int i = 0; i < bitmap.Length; i++)
        {
            ulong word = bitmap[i];
            while (word != 0)
            {
                int bit = System.Numerics.BitOperations.TrailingZeroCount(word);
                word &= word - 1;
                yield return (ulong)(i * 64 + bit);
            }
        }
    }

    /// <summary>How many pages a fetched bitmap holds.</summary>
    public static long CountPages(ulong[] bitmap)
    {
        long count = 0;
        foreach (ulong word in bitmap)
        {
            count += System.Numerics.BitOperations.PopCount(word);
        }

        return count;
    }

    private void SetBit(ulong page)
    {
        ulong mask = 1UL << (int)(page & 63);
        ref ulong word = ref _bits[page >> 6];
        if ((Volatile.Read(ref word) & mask) == 0)
        {
            Interlocked.Or(ref word, mask);
        }
    }

    private readonly record struct Span(ulong Address, ulong Size, nint Host, ulong FirstPage);
}
