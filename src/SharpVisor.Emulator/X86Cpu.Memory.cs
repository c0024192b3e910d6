using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>
/// Address generation, segmentation checks and memory access through the MMU's software TLB.
/// The inline fast path checks the TLB entry of the current privilege context (user or
/// supervisor); everything else goes to <see cref="Mmu.IMmu.Translate"/>, which fills the TLB.
/// </summary>
public sealed unsafe partial class X86Cpu
{
    internal const ulong PageMask = ~0xFFFUL;

    private IMmu _mmu = null!;
    private SoftTlb _tlb = null!;
    private TlbEntry[] _tlbEntries = null!;
    private int _tlbSlotMask;

    // Offset of the current privilege context's slots in _tlbEntries, and the User bit explicit accesses carry.
    private int _tlbContextBase;
    private PageAccess _privilegeAccess;

    // A read-modify-write operand that could not be reached through a host pointer (MMIO, page
    // split), or one in a write-tracked frame (operated on in place, then reported).
    private readonly byte[] _rmwBuffer = new byte[16];
    private bool _rmwPending;
    private ulong _rmwLinear;
    private int _rmwSize;
    private ulong _rmwTrackedPhysical = NoTrackedRmw;
    private const ulong NoTrackedRmw = ulong.MaxValue;

    private void AttachMmu(IMmu mmu)
    {
        _mmu = mmu;
        _tracking = mmu.Tracking;
        _tlb = mmu.Tlb;
        _tlbEntries = _tlb.Entries;
        _tlbSlotMask = _tlb.Slots - 1;
        RefreshTlbContext();
    }

    /// <summary>
    /// Selects the TLB context for the CPL and RFLAGS.AC: explicit accesses at CPL 3 are user
    /// accesses; supervisor ones with AC set are exempt from SMAP (their own context, since the
    /// TLB caches SMAP's verdicts).
    /// </summary>
    private void RefreshTlbContext()
    {
        if (_cpl == 3)
        {
            _privilegeAccess = PageAccess.User;
            _tlbContextBase = (int)TlbContext.User * _tlb.Slots;
        }
        else if ((_flags & RflagsBits.AlignmentCheck) != 0)
        {
            _privilegeAccess = PageAccess.Read | PageAccess.AlignmentCheck;
            _tlbContextBase = (int)TlbContext.SupervisorAlignmentCheck * _tlb.Slots;
        }
        else
        {
            _privilegeAccess = PageAccess.Read;
            _tlbContextBase = (int)TlbContext.Supervisor * _tlb.Slots;
        }
    }

    /// <summary>Drops every cached translation, global ones included, and the linear-address block lookups.</summary>
    public void FlushTlb()
    {
        _mmu.FlushAll();
        FlushJumpCache();
    }

    /// <summary>Drops the cached translation of one linear page (INVLPG).</summary>
    public void FlushTlbPage(ulong linear)
    {
        _mmu.FlushPage(linear);
        FlushJumpCachePage(linear);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref TlbEntry TlbFor(ulong linear) =>
        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_tlbEntries), _tlbContextBase + ((int)(linear >> 12) & _tlbSlotMask));

    /// <summary>The tag a TLB entry holds for an access it allows to the page of <paramref name="linear"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Tag(ulong linear) => (linear & PageMask) | _tlb.Stamp;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsCanonical(ulong address) => (ulong)((long)(address << 16) >> 16) == address;

    // ---- Address generation ----------------------------------------------------------------

    /// <summary>The effective address (offset within the segment) of a memory operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong EffectiveAddress(ref Op op)
    {
        ulong ea = Gpr(op.Base) + (Gpr(op.Index) << op.Scale) + op.Disp;
        return ea & (ulong.MaxValue >> (64 - (op.AddrSize << 3)));
    }

    /// <summary>Linear address of a memory operand, with the canonical or segment-limit check for an access of <paramref name="size"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Linear(ref Op op, int size, MemoryAccess access)
    {
        ulong ea = EffectiveAddress(ref op);
        if (_is64)
        {
            ulong linear = ea + _segBase[op.Seg];
            if (!IsCanonical(linear))
            {
                NonCanonical(op.Seg);
            }

            return linear;
        }

        return LegacyLinear(op.Seg, ea, size, access);
    }

    /// <summary>
    /// <see cref="Linear"/> for an operand the binder found flat (<see cref="InstructionBinder.IsFlat"/>):
    /// 64-bit mode, 64-bit address size and ES, CS, SS or DS, whose base is 0 there, so the linear
    /// address is the effective address and the canonical check is the only one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong FlatLinear(ref Op op)
    {
        ulong linear = Gpr(op.Base) + (Gpr(op.Index) << op.Scale) + op.Disp;
        if (!IsCanonical(linear))
        {
            NonCanonical(op.Seg);
        }

        return linear;
    }

    /// <summary>Linear address of <paramref name="offset"/> in segment <paramref name="seg"/> (string and stack operands).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong SegmentLinear(int seg, ulong offset, int size, MemoryAccess access)
    {
        if (_is64)
        {
            ulong linear = offset + _segBase[seg];
            if (!IsCanonical(linear))
            {
                NonCanonical(seg);
            }

            return linear;
        }

        return LegacyLinear(seg, offset, size, access);
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NonCanonical(int seg)
    {
        throw new CpuException(seg == SegSs ? ExceptionVector.StackSegment : ExceptionVector.GeneralProtection, 0);
    }

    /// <summary>Segmentation outside 64-bit mode: usability, type and limit checks, 32-bit linear wrap.</summary>
    private ulong LegacyLinear(int seg, ulong offset, int size, MemoryAccess access)
    {
        ref SegmentCache s = ref _segs[seg];
        ExceptionVector vector = seg == SegSs ? ExceptionVector.StackSegment : ExceptionVector.GeneralProtection;
        if (_mode is not (CpuMode.Real or CpuMode.Virtual8086))
        {
            if (s.Unusable)
            {
                throw new CpuException(vector, 0);
            }

            if (access == MemoryAccess.Write ? !s.Writable : !s.Readable)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, 0);
            }
        }

        ulong last = offset + (ulong)size - 1;
        if (s.ExpandDown)
        {
            ulong upper = s.DefaultBig ? 0xFFFF_FFFFUL : 0xFFFF;
            if (offset <= s.Limit || last > upper)
            {
                throw new CpuException(vector, 0);
            }
        }
        else if (last > s.Limit)
        {
            throw new CpuException(vector, 0);
        }

        return (uint)(s.Base + offset);
    }

    // ---- Reads ---------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte Read8(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadTag == Tag(linear))
        {
            return *(byte*)((nint)linear + e.Addend);
        }

        return (byte)ReadSlow(linear, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ushort Read16(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadTag == Tag(linear) && (linear & 0xFFF) <= 0xFFE)
        {
            return Unsafe.ReadUnaligned<ushort>((void*)((nint)linear + e.Addend));
        }

        return (ushort)ReadSlow(linear, 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint Read32(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadTag == Tag(linear) && (linear & 0xFFF) <= 0xFFC)
        {
            return Unsafe.ReadUnaligned<uint>((void*)((nint)linear + e.Addend));
        }

        return (uint)ReadSlow(linear, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Read64(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadTag == Tag(linear) && (linear & 0xFFF) <= 0xFF8)
        {
            return Unsafe.ReadUnaligned<ulong>((void*)((nint)linear + e.Addend));
        }

        return ReadSlow(linear, 8);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ReadSlow(ulong linear, int size)
    {
        Span<byte> data = stackalloc byte[8];
        data.Clear();
        ReadBytes(linear, data[..size]);
        return BinaryPrimitives.ReadUInt64LittleEndian(data);
    }

    // ---- Writes --------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write8(ulong linear, byte value)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.WriteTag == Tag(linear))
        {
            *(byte*)((nint)linear + e.Addend) = value;
            return;
        }

        WriteSlow(linear, 1, value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write16(ulong linear, ushort value)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.WriteTag == Tag(linear) && (linear & 0xFFF) <= 0xFFE)
        {
            Unsafe.WriteUnaligned((void*)((nint)linear + e.Addend), value);
            return;
        }

        WriteSlow(linear, 2, value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write32(ulong linear, uint value)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.WriteTag == Tag(linear) && (linear & 0xFFF) <= 0xFFC)
        {
            Unsafe.WriteUnaligned((void*)((nint)linear + e.Addend), value);
            return;
        }

        WriteSlow(linear, 4, value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write64(ulong linear, ulong value)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.WriteTag == Tag(linear) && (linear & 0xFFF) <= 0xFF8)
        {
            Unsafe.WriteUnaligned((void*)((nint)linear + e.Addend), value);
            return;
        }

        WriteSlow(linear, 8, value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteSlow(ulong linear, int size, ulong value)
    {
        Span<byte> data = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(data, value);
        WriteBytes(linear, data[..size]);
    }

    // ---- Read-modify-write ----------------------------------------------------------------

    /// <summary>
    /// A reference to a writable memory operand for read-modify-write instructions. Faults
    /// (including write protection) are raised here, before the instruction changes anything.
    /// Callers must call <see cref="CommitRmw"/> after storing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref byte RmwRef(ulong linear, int size)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.WriteTag == Tag(linear) && (linear & 0xFFF) <= (ulong)(0x1000 - size))
        {
            return ref Unsafe.AsRef<byte>((void*)((nint)linear + e.Addend));
        }

        return ref RmwSlow(linear, size);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ref byte RmwSlow(ulong linear, int size)
    {
        // Check write access to every page first, then try again for a direct pointer.
        ProbeWrite(linear, size);
        ref TlbEntry e = ref TlbFor(linear);
        if (e.WriteTag == Tag(linear) && (linear & 0xFFF) <= (ulong)(0x1000 - size))
        {
            return ref Unsafe.AsRef<byte>((void*)((nint)linear + e.Addend));
        }

        if ((linear & 0xFFF) <= (ulong)(0x1000 - size))
        {
            // A write-tracked RAM frame: in place, so LOCKed operations stay atomic against the
            // other vCPUs (and their page walks' A/D updates); CommitRmw reports the store.
            nint host = TranslatePage(linear, MemoryAccess.Write);
            if (host != 0 && _lastTracked && !_lastFiltered)
            {
                if (_dataBreakpointsEnabled)
                {
                    CheckDataBreakpoints(linear, size, write: true);
                }

                _rmwPending = true;
                _rmwTrackedPhysical = _lastPhysical;
                _rmwSize = size;
                return ref Unsafe.AsRef<byte>((void*)host);
            }
        }

        // Split or MMIO: operate on a copy and write it back in CommitRmw.
        ReadBytes(linear, _rmwBuffer.AsSpan(0, size));
        _rmwTrackedPhysical = NoTrackedRmw;
        _rmwPending = true;
        _rmwLinear = linear;
        _rmwSize = size;
        return ref _rmwBuffer[0];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void CommitRmw()
    {
        if (_rmwPending)
        {
            CommitRmwSlow();
        }
    }

    private void CommitRmwSlow()
    {
        _rmwPending = false;
        if (_rmwTrackedPhysical != NoTrackedRmw)
        {
            OnTrackedStore(_rmwTrackedPhysical, _rmwSize);
            return;
        }

        WriteBytes(_rmwLinear, _rmwBuffer.AsSpan(0, _rmwSize));
    }

    /// <summary>Raises the fault a write of <paramref name="size"/> bytes at <paramref name="linear"/> would raise, without writing.</summary>
    internal void ProbeWrite(ulong linear, int size)
    {
        ulong last = NextLinear(linear, (ulong)size - 1);
        TranslatePage(linear, MemoryAccess.Write);
        if ((last & PageMask) != (linear & PageMask))
        {
            TranslatePage(last & PageMask, MemoryAccess.Write);
        }
    }

    /// <summary>
    /// Probes a large save area the way FXSAVE/XSAVE do on Intel processors: the last byte first
    /// (a fault there reports that byte's address in CR2), then the first.
    /// </summary>
    internal void ProbeArea(ulong linear, int size, MemoryAccess access)
    {
        ulong last = NextLinear(linear, (ulong)size - 1);
        TranslatePage(last, access);
        TranslatePage(linear, access);
    }

    /// <summary>Raises the fault a read of <paramref name="size"/> bytes at <paramref name="linear"/> would raise.</summary>
    internal void ProbeRead(ulong linear, int size)
    {
        ulong last = NextLinear(linear, (ulong)size - 1);
        TranslatePage(linear, MemoryAccess.Read);
        if ((last & PageMask) != (linear & PageMask))
        {
            TranslatePage(last & PageMask, MemoryAccess.Read);
        }
    }

    // ---- Slow paths: page splits, MMIO, tracked pages, TLB fill ------------------------------

    /// <summary>Linear address <paramref name="delta"/> bytes after <paramref name="linear"/> (wraps at 4 GiB outside 64-bit mode).</summary>
    private ulong NextLinear(ulong linear, ulong delta)
    {
        ulong next = linear + delta;
        if (!_is64)
        {
            return (uint)next;
        }

        if (!IsCanonical(next))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        return next;
    }

    /// <summary>Reads bytes that may span pages or hit MMIO. All pages are translated before any is read.</summary>
    internal void ReadBytes(ulong linear, Span<byte> data) => AccessBytes(linear, data, MemoryAccess.Read, implicitAccess: false);

    internal void WriteBytes(ulong linear, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            AccessBytes(linear, new Span<byte>(p, data.Length), MemoryAccess.Write, implicitAccess: false);
        }
    }

    /// <summary>
    /// An implicit supervisor-mode access (descriptor tables, the TSS, the IDT, interrupt stack
    /// frames being built): checked as CPL 0 whatever the CPL.
    /// </summary>
    internal void AccessSystem(ulong linear, Span<byte> data, MemoryAccess access) => AccessBytes(linear, data, access, implicitAccess: true);

    private void AccessBytes(ulong linear, Span<byte> data, MemoryAccess access, bool implicitAccess)
    {
        if (data.Length == 0)
        {
            return;
        }

        // Translate every page first so a fault leaves memory untouched.
        ulong last = NextLinear(linear, (ulong)data.Length - 1);
        if (_dataBreakpointsEnabled)
        {
            CheckDataBreakpoints(linear, data.Length, access == MemoryAccess.Write);
        }

        nint firstHost = TranslatePage(linear, access, implicitAccess);
        ulong firstPhys = _lastPhysical;
        bool firstTracked = _lastTracked;
        bool filtered = _lastFiltered;
        int firstLength = (linear & PageMask) == (last & PageMask) ? data.Length : (int)(0x1000 - (linear & 0xFFF));
        nint secondHost = 0;
        ulong secondPhys = 0;
        bool secondTracked = false;
        if (firstLength < data.Length)
        {
            ulong secondLinear = NextLinear(linear, (ulong)firstLength);
            secondHost = TranslatePage(secondLinear, access, implicitAccess);
            secondPhys = _lastPhysical;
            secondTracked = _lastTracked;
            filtered |= _lastFiltered;
        }

        if (filtered && access == MemoryAccess.Write)
        {
            // A locked GDT's frame: checked before anything is stored, so a refusal leaves memory as it was.
            CheckDescriptorTableStore(linear, firstHost, firstPhys, data[..firstLength], implicitAccess);
            if (firstLength < data.Length)
            {
                CheckDescriptorTableStore(NextLinear(linear, (ulong)firstLength), secondHost, secondPhys, data[firstLength..], implicitAccess);
            }
        }

        CopyPage(firstHost, firstPhys, data[..firstLength], access, firstTracked);
        if (firstLength < data.Length)
        {
            CopyPage(secondHost, secondPhys, data[firstLength..], access, secondTracked);
        }
    }

    /// <param name="tracked">Some vCPU write-tracks the page: report the store (<see cref="OnTrackedStore"/>).</param>
    private void CopyPage(nint host, ulong physical, Span<byte> data, MemoryAccess access, bool tracked)
    {
        if (host != 0)
        {
            var page = new Span<byte>((void*)host, data.Length);
            if (access == MemoryAccess.Write)
            {
                data.CopyTo(page);
                if (tracked)
                {
                    OnTrackedStore(physical, data.Length);
                }
            }
            else
            {
                page.CopyTo(data);
            }

            return;
        }

        IMmioHandler mmio = _physical.Mmio!;
        if (access == MemoryAccess.Write)
        {
            mmio.Write(physical, data);
        }
        else if (!mmio.Read(physical, data))
        {
            data.Fill(0xFF);
        }
    }

    /// <summary>
    /// A hypervisor's copy to or from guest-virtual memory (a hypercall's buffer), as supervisor
    /// accesses, page by page for any length: false on a page that does not translate or is not
    /// RAM — MMIO is refused, so a hypercall buffer never reaches a device.
    /// </summary>
    internal bool TryCopyRam(ulong linear, Span<byte> data, MemoryAccess access)
    {
        try
        {
            while (!data.IsEmpty)
            {
                int chunk = (int)Math.Min((ulong)data.Length, 0x1000 - (linear & 0xFFF));
                nint host = TranslatePage(linear, access);
                if (host == 0 || (_lastFiltered && access == MemoryAccess.Write))
                {
                    return false; // MMIO, or a hypercall buffer over a locked GDT
                }

                CopyPage(host, _lastPhysical, data[..chunk], access, _lastTracked);
                data = data[chunk..];
                linear = NextLinear(linear, (ulong)chunk);
            }

            return true;
        }
        catch (CpuException)
        {
            return false;
        }
    }

    // Results of the last TranslatePage besides its return value.
    private ulong _lastPhysical;
    private bool _lastTracked;
    private bool _lastFiltered;

    /// <summary>
    /// Translates <paramref name="linear"/> for <paramref name="access"/> through the MMU (which fills
    /// the TLB) and returns its host address: 0 for MMIO, with the guest-physical address left in
    /// <see cref="_lastPhysical"/>, and whether a store must be reported in <see cref="_lastTracked"/>
    /// (decoded code or a shadowed table: the MMU never gives those frames TLB write tags). Raises
    /// #PF with the MMU's error code.
    /// </summary>
    private nint TranslatePage(ulong linear, MemoryAccess access, bool implicitAccess = false)
    {
        PageAccess kind = access switch
        {
            MemoryAccess.Write => PageAccess.Write,
            MemoryAccess.Execute => PageAccess.Execute,
            _ => PageAccess.Read,
        };
        kind |= implicitAccess ? PageAccess.Implicit : _privilegeAccess;
        Translation t = _mmu.Translate(linear, kind);
        if (t.Violation is { } violation)
        {
            ReportTranslationViolation(violation, linear);
        }

        if (t.IsPageFault)
        {
            throw RaisePageFault(t.Fault.Address, (uint)t.Fault.ErrorCode);
        }

        ulong physical = t.PhysicalAddress;
        _lastPhysical = physical;
        _lastTracked = t.WriteTracked;
        _lastFiltered = t.WriteFiltered;
        if (_dataBreakpointsEnabled && access != MemoryAccess.Execute && IsWatchedPage(linear))
        {
            // A data breakpoint's page: no TLB entry, so every access to it comes through AccessBytes.
            _mmu.FlushPage(linear);
        }

        if (t.IsRam)
        {
            return t.HostAddress;
        }

        if (_physical.Mmio is null || access == MemoryAccess.Execute)
        {
            // No device can answer (or code would run from a device): as if nothing were mapped.
            throw RaisePageFault(linear, (uint)(kind & (PageAccess.Write | PageAccess.User)));
        }

        return 0;
    }

    /// <summary>Loads CR2 and makes the #PF exception.</summary>
    private CpuException RaisePageFault(ulong linear, uint errorCode)
    {
        _cr2 = linear;
        return new CpuException(ExceptionVector.PageFault, errorCode, linear);
    }

    /// <summary>Host pointer to the start of the code page holding <paramref name="linear"/>, and its physical address.</summary>
    internal nint FetchPage(ulong linear, out ulong physicalPage)
    {
        PageAccess kind = PageAccess.Execute | _privilegeAccess;
        if (_tlb.TryLookup(linear & PageMask, kind, out nint host, out ulong physical))
        {
            physicalPage = physical;
            return host;
        }

        host = TranslatePage(linear, MemoryAccess.Execute);
        physicalPage = _lastPhysical & PageMask;
        return host - (nint)(linear & 0xFFF);
    }
}
