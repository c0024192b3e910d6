using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>Address generation, segmentation checks and the software TLB.</summary>
public sealed unsafe partial class X86Cpu
{
    internal const int TlbSize = 256;
    internal const ulong PageMask = ~0xFFFUL;

    internal readonly TlbEntry[] _tlb;

    // A read-modify-write operand that could not be reached through a host pointer (MMIO, page split).
    private readonly byte[] _rmwBuffer = new byte[16];
    private bool _rmwPending;
    private ulong _rmwLinear;
    private int _rmwSize;

    /// <summary>Drops every cached translation (CR3 load, paging mode change, INVLPG of a global page, MMU swap).</summary>
    public void FlushTlb()
    {
        for (int i = 0; i < _tlb.Length; i++)
        {
            _tlb[i].Clear();
        }

        FlushJumpCache();
    }

    /// <summary>Drops the cached translation of one linear page (INVLPG).</summary>
    public void FlushTlbPage(ulong linear)
    {
        TlbFor(linear).Clear();
        FlushJumpCache();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref TlbEntry TlbFor(ulong linear) =>
        ref Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_tlb), (int)((linear >> 12) & (TlbSize - 1)));

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

    /// <summary>Segmentation outside 64-bit mode: presence, type and limit checks, 32-bit linear wrap.</summary>
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

        if (_mode == CpuMode.Long64 || _mode is CpuMode.Compatibility16 or CpuMode.Compatibility32)
        {
            return (uint)(s.Base + offset);
        }

        return (uint)(s.Base + offset);
    }

    // ---- Reads ---------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal byte Read8(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadPage == (linear & PageMask))
        {
            return *(byte*)((nint)linear + e.Addend);
        }

        return (byte)ReadSlow(linear, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ushort Read16(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadPage == (linear & PageMask) && (linear & 0xFFF) <= 0xFFE)
        {
            return Unsafe.ReadUnaligned<ushort>((void*)((nint)linear + e.Addend));
        }

        return (ushort)ReadSlow(linear, 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint Read32(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadPage == (linear & PageMask) && (linear & 0xFFF) <= 0xFFC)
        {
            return Unsafe.ReadUnaligned<uint>((void*)((nint)linear + e.Addend));
        }

        return (uint)ReadSlow(linear, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Read64(ulong linear)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.ReadPage == (linear & PageMask) && (linear & 0xFFF) <= 0xFF8)
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
        if (e.WritePage == (linear & PageMask))
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
        if (e.WritePage == (linear & PageMask) && (linear & 0xFFF) <= 0xFFE)
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
        if (e.WritePage == (linear & PageMask) && (linear & 0xFFF) <= 0xFFC)
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
        if (e.WritePage == (linear & PageMask) && (linear & 0xFFF) <= 0xFF8)
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
        if (e.WritePage == (linear & PageMask) && (linear & 0xFFF) <= (ulong)(0x1000 - size))
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
        if (e.WritePage == (linear & PageMask) && (linear & 0xFFF) <= (ulong)(0x1000 - size))
        {
            return ref Unsafe.AsRef<byte>((void*)((nint)linear + e.Addend));
        }

        // Split or MMIO: operate on a copy and write it back in CommitRmw.
        ReadBytes(linear, _rmwBuffer.AsSpan(0, size));
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
        WriteBytes(_rmwLinear, _rmwBuffer.AsSpan(0, _rmwSize));
    }

    /// <summary>Raises the fault a write of <paramref name="size"/> bytes at <paramref name="linear"/> would raise, without writing.</summary>
    internal void ProbeWrite(ulong linear, int size)
    {
        ulong last = NextLinear(linear, (ulong)size - 1);
        TranslatePage(linear, MemoryAccess.Write, linear);
        if ((last & PageMask) != (linear & PageMask))
        {
            TranslatePage(last & PageMask, MemoryAccess.Write, last & PageMask);
        }
    }

    /// <summary>
    /// Probes a large save area the way FXSAVE/XSAVE do on Intel processors: the last byte first
    /// (a fault there reports that byte's address in CR2), then the first.
    /// </summary>
    internal void ProbeArea(ulong linear, int size, MemoryAccess access)
    {
        ulong last = NextLinear(linear, (ulong)size - 1);
        TranslatePage(last, access, last);
        TranslatePage(linear, access, linear);
    }

    /// <summary>Raises the fault a read of <paramref name="size"/> bytes at <paramref name="linear"/> would raise.</summary>
    internal void ProbeRead(ulong linear, int size)
    {
        ulong last = NextLinear(linear, (ulong)size - 1);
        TranslatePage(linear, MemoryAccess.Read, linear);
        if ((last & PageMask) != (linear & PageMask))
        {
            TranslatePage(last & PageMask, MemoryAccess.Read, last & PageMask);
        }
    }

    // ---- Slow paths: page splits, MMIO, TLB fill -------------------------------------------

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
    internal void ReadBytes(ulong linear, Span<byte> data)
    {
        AccessBytes(linear, data, MemoryAccess.Read);
    }

    internal void WriteBytes(ulong linear, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            AccessBytes(linear, new Span<byte>(p, data.Length), MemoryAccess.Write);
        }
    }

    private void AccessBytes(ulong linear, Span<byte> data, MemoryAccess access)
    {
        if (data.Length == 0)
        {
            return;
        }

        // Translate every page first so a fault leaves memory untouched.
        ulong last = NextLinear(linear, (ulong)data.Length - 1);
        nint firstHost = TranslatePage(linear, access, linear);
        ulong firstPhys = _lastPhysical;
        int firstLength = (linear & PageMask) == (last & PageMask) ? data.Length : (int)(0x1000 - (linear & 0xFFF));
        nint secondHost = 0;
        ulong secondPhys = 0;
        ulong secondLinear = NextLinear(linear, (ulong)firstLength);
        if (firstLength < data.Length)
        {
            secondHost = TranslatePage(secondLinear, access, secondLinear);
            secondPhys = _lastPhysical;
        }

        CopyPage(firstHost, firstPhys, data[..firstLength], access);
        if (firstLength < data.Length)
        {
            CopyPage(secondHost, secondPhys, data[firstLength..], access);
        }
    }

    private void CopyPage(nint host, ulong physical, Span<byte> data, MemoryAccess access)
    {
        if (host != 0)
        {
            var page = new Span<byte>((void*)host, data.Length);
            if (access == MemoryAccess.Write)
            {
                data.CopyTo(page);
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

    private ulong _lastPhysical;

    /// <summary>
    /// Translates the page of <paramref name="linear"/> for <paramref name="access"/>, fills the TLB when
    /// RAM backs it and returns the host address of <paramref name="linear"/> (0 for MMIO, with the physical
    /// address left in <see cref="_lastPhysical"/>). Raises #PF for unbacked addresses when no MMIO handler exists.
    /// </summary>
    private nint TranslatePage(ulong linear, MemoryAccess access, ulong faultAddress)
    {
        ulong physical = _mmu.Translate(this, linear, access);
        _lastPhysical = physical;
        ulong physicalPage = physical & PageMask;
        bool write = access == MemoryAccess.Write;
        if (_physical.TryGetRamPage(physicalPage, write, out nint hostPage))
        {
            if (write && IsCodePage(physicalPage))
            {
                InvalidateCodePage(physicalPage);
            }

            ref TlbEntry e = ref TlbFor(linear);
            ulong linearPage = linear & PageMask;
            nint addend = hostPage - (nint)linearPage;
            if (e.Addend != addend || e.PhysicalPage != physicalPage)
            {
                e.Clear();
                e.Addend = addend;
                e.PhysicalPage = physicalPage;
            }

            switch (access)
            {
                case MemoryAccess.Read:
                    e.ReadPage = linearPage;
                    break;
                case MemoryAccess.Write:
                    e.WritePage = linearPage;
                    e.ReadPage = linearPage;
                    break;
                default:
                    e.FetchPage = linearPage;
                    break;
            }

            return hostPage + (nint)(physical & 0xFFF);
        }

        if (_physical.Mmio is null || access == MemoryAccess.Execute)
        {
            throw PageFault(faultAddress, access, present: false);
        }

        return 0;
    }

    /// <summary>A #PF for <paramref name="linear"/> with the error code the access implies.</summary>
    public CpuException PageFault(ulong linear, MemoryAccess access, bool present, bool reservedBit = false)
    {
        uint code = present ? 1u : 0;
        code |= access == MemoryAccess.Write ? 2u : 0;
        code |= _cpl == 3 ? 4u : 0;
        code |= reservedBit ? 8u : 0;
        code |= access == MemoryAccess.Execute && (_efer & Machine.VcpuState.EferNoExecute) != 0 ? 16u : 0;
        _cr2 = linear;
        return new CpuException(ExceptionVector.PageFault, code, linear);
    }

    /// <summary>Host pointer to the start of the code page holding <paramref name="linear"/>, and its physical address.</summary>
    internal nint FetchPage(ulong linear, out ulong physicalPage)
    {
        ref TlbEntry e = ref TlbFor(linear);
        if (e.FetchPage == (linear & PageMask))
        {
            physicalPage = e.PhysicalPage;
            return (nint)(linear & PageMask) + e.Addend;
        }

        nint host = TranslatePage(linear, MemoryAccess.Execute, linear);
        physicalPage = _lastPhysical & PageMask;
        return host - (nint)(linear & 0xFFF);
    }

    /// <summary>Drops write tags of TLB entries mapping <paramref name="physicalPage"/> (it now holds cached code).</summary>
    private void ProtectCodePage(ulong physicalPage)
    {
        for (int i = 0; i < _tlb.Length; i++)
        {
            if (_tlb[i].PhysicalPage == physicalPage)
            {
                _tlb[i].WritePage = TlbEntry.Invalid;
            }
        }
    }
}
