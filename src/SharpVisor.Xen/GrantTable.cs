using System.Runtime.CompilerServices;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen;

/// <summary>
/// Dom0's view of a guest's v1 grant table (xen/include/public/grant_table.h): the entries
/// live in the grant frames the guest mapped (<see cref="XenDomain.GetGrantFrame"/>), 512 per frame,
/// each { uint16 flags; domid_t domid; uint32 frame }. A back end copies to and from granted pages
/// or maps one for a while; every reference, offset, length, the grantee and the read-only flag are
/// checked here, and GTF_reading/GTF_writing are set while a page is in use (as Xen does), so the
/// guest can tell when it may take a grant back.
/// </summary>
public sealed class GrantTable
{
    public const int EntriesPerFrame = 512;
    public const ushort PermitAccess = 1;
    public const ushort TypeMask = 3;
    public const ushort ReadOnly = 1 << 2;
    public const ushort Reading = 1 << 3;
    public const ushort Writing = 1 << 4;
    private const int PageSize = 4096;

    private readonly XenDomain _domain;
    private readonly GuestMemory _memory;

    /// <summary>PV only: the pages mapped writable (<see cref="Map"/>), whose type reference <see cref="Unmap"/> drops.</summary>
    private readonly List<(uint Reference, ulong Page)> _pvWriteMaps = [];

    public GrantTable(XenDomain domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        _domain = domain;
        _memory = domain.Memory;
    }

    /// <summary>Grant copies and maps done, bytes copied, refusals; for metrics.</summary>
    public Machine.ExitCounters Counters { get; } = new();

    /// <summary>Copies from the page the guest granted <paramref name="grantee"/> under <paramref name="reference"/>.</summary>
    public void CopyFrom(ushort grantee, uint reference, int offset, Span<byte> destination)
    {
        ulong page = Acquire(grantee, reference, offset, destination.Length, write: false);
        try
        {
            _memory.Read(page + (ulong)offset, destination);
            Counters.Increment("grant-copies");
            Counters.Add("grant-copy-bytes", destination.Length);
        }
        finally
        {
            Release(reference, write: false, page);
        }
    }

    /// <summary>Copies into the page the guest granted (writable) under <paramref name="reference"/>.</summary>
    public void CopyTo(ushort grantee, uint reference, int offset, ReadOnlySpan<byte> source)
    {
        ulong page = Acquire(grantee, reference, offset, source.Length, write: true);
        try
        {
            _memory.Write(page + (ulong)offset, source);
            Counters.Increment("grant-copies");
            Counters.Add("grant-copy-bytes", source.Length);
        }
        finally
        {
            Release(reference, write: true, page);
        }
    }

    /// <summary>
    /// grant_table_op copy's source side: <see cref="CopyFrom"/> answering the GNTST status instead
    /// of throwing (another domain's copy, served in this domain's VMM, under this table's rules).
    /// </summary>
    public short TryCopyFrom(ushort grantee, uint reference, int offset, Span<byte> destination)
    {
        try
        {
            CopyFrom(grantee, reference, offset, destination);
            return GrantStatus.Okay;
        }
        catch (GrantTableException e)
        {
            return e.Status;
        }
    }

    /// <summary>grant_table_op copy's destination side: <see cref="CopyTo"/> answering the GNTST status.</summary>
    public short TryCopyTo(ushort grantee, uint reference, int offset, ReadOnlySpan<byte> source)
    {
        try
        {
            CopyTo(grantee, reference, offset, source);
            return GrantStatus.Okay;
        }
        catch (GrantTableException e)
        {
            return e.Status;
        }
    }

    /// <summary>
    /// Maps a granted page for the back end (or another domain's grant mapping): its
    /// guest-physical address, marked in use until <see cref="Unmap"/>. Maps are counted per
    /// reference (the domain's <see cref="GrantPins"/>), so GTF_reading/GTF_writing stay set
    /// while any map of the entry remains, whatever copies come and go.
    /// </summary>
    public ulong Map(ushort grantee, uint reference, bool write)
    {
        ulong page;
        lock (_domain.GrantPins)
        {
            page = Acquire(grantee, reference, 0, PageSize, write);
            _domain.GrantPins.Add(reference, write);
        }

        if (write && _domain.PvTables is not null)
        {
            // Under PV the written frame holds a Writable type reference until the unmap.
            lock (_pvWriteMaps)
            {
                _pvWriteMaps.Add((reference, page));
            }
        }

        Counters.Increment("grant-maps");
        return page;
    }

    /// <summary><see cref="Map"/> answering the GNTST status instead of throwing.</summary>
    public short TryMap(ushort grantee, uint reference, bool write, out ulong page)
    {
        try
        {
            page = Map(grantee, reference, write);
            return GrantStatus.Okay;
        }
        catch (GrantTableException e)
        {
            page = 0;
            return e.Status;
        }
    }

    public void Unmap(uint reference, bool write)
    {
        lock (_domain.GrantPins)
        {
            if (!_domain.GrantPins.Remove(reference, write))
            {
                return;
            }
        }

        ulong page = 0;
        if (write && _domain.PvTables is not null)
        {
            lock (_pvWriteMaps)
            {
                int at = _pvWriteMaps.FindIndex(m => m.Reference == reference);
                if (at >= 0)
                {
                    page = _pvWriteMaps[at].Page;
                    _pvWriteMaps.RemoveAt(at);
                }
            }
        }

        Release(reference, write, page);
    }

    /// <summary>Checks the entry and marks it in use with one compare-and-swap on its flags/domid word.</summary>
    private ulong Acquire(ushort grantee, uint reference, int offset, int length, bool write)
    {
        if (offset < 0 || length < 0 || offset + length > PageSize)
        {
            throw Refuse("EINVAL", $"offset {offset} + length {length} leaves the page", GrantStatus.BadCopyArg);
        }

        ref uint header = ref Header(reference, out ulong entry);
        while (true)
        {
            uint old = Volatile.Read(ref header);
            ushort flags = (ushort)old;
            ushort domid = (ushort)(old >> 16);
            if ((flags & TypeMask) != PermitAccess || domid != grantee)
            {
                throw Refuse("EACCES", $"grant {reference} is not granted to domain {grantee} (flags 0x{flags:x}, domid {domid})", GrantStatus.GeneralError);
            }

            if (write && (flags & ReadOnly) != 0)
            {
                throw Refuse("EACCES", $"grant {reference} is read-only", GrantStatus.GeneralError);
            }

            uint frame = _memory.Read<uint>(entry + 4);
            ulong page = (ulong)frame << 12;
            // A map target counts: a Linux driver domain's blkback hands the front end's pages it mapped
            // to its own disk, whose blkfront grants them to the back end for copies. A map of such a grant
            // is refused by XenDomain (no page of the domain's there).
            if (!_memory.IsValid(page, PageSize))
            {
                throw Refuse("EINVAL", $"grant {reference} names frame 0x{frame:x}, not memory of the domain", GrantStatus.BadPage);
            }

            // A PV domain's grants name machine frames: only its own, and one written through a grant
            // holds a Writable type reference meanwhile (so it cannot become a page table or a GDT
            // page under the back end's write, as Xen's get_page_type(PGT_writable_page) ensures).
            if (_domain.PvTables is { } pv)
            {
                if (!pv.Owns(frame))
                {
                    throw Refuse("EINVAL", $"grant {reference} names machine frame 0x{frame:x}, not the domain's", GrantStatus.BadPage);
                }

                if (write && pv.GetTypeReference(frame, PvPageType.Writable) != 0)
                {
                    throw Refuse("EINVAL", $"grant {reference} names machine frame 0x{frame:x}, in use as {pv.TypeInUse(frame)}", GrantStatus.BadPage);
                }
            }

            uint marked = old | (uint)(write ? Writing | Reading : Reading);
            if (Interlocked.CompareExchange(ref header, marked, old) == old)
            {
                return page;
            }

            if (write && _domain.PvTables is { } again)
            {
                again.PutTypeReference(frame);
            }
        }
    }

    /// <summary>
    /// Clears the in-use flags a copy or map set, but those the entry's remaining maps still need;
    /// under PV a written <paramref name="page"/> (0: none) drops its Writable type reference.
    /// </summary>
    private void Release(uint reference, bool write, ulong page)
    {
        lock (_domain.GrantPins)
        {
            uint clear = (uint)(write ? Writing | Reading : Reading) & ~(uint)_domain.GrantPins.InUseFlags(reference);
            ref uint header = ref Header(reference, out _);
            Interlocked.And(ref header, ~clear);
        }

        if (write && page != 0 && _domain.PvTables is { } pv)
        {
            pv.PutTypeReference(page >> 12);
        }
    }

    private ref uint Header(uint reference, out ulong entry)
    {
        ulong frame = _domain.GetGrantFrame((int)Math.Min(reference / EntriesPerFrame, int.MaxValue));
        if (frame == 0)
        {
            throw Refuse("EINVAL", $"grant {reference} is beyond the guest's grant table", GrantStatus.BadGntref);
        }

        entry = frame + ((reference % EntriesPerFrame) * 8);
        return ref Unsafe.As<byte, uint>(ref _memory.GetSpan(entry, 8)[0]);
    }

    private GrantTableException Refuse(string error, string message, short status)
    {
        Counters.Increment("grant-refusals");
        return new GrantTableException(error, message, status);
    }
}
