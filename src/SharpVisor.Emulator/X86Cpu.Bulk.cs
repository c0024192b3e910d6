using System.Runtime.CompilerServices;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>Page-at-a-time fast paths for forward REP MOVS/STOS/CMPS/SCAS over RAM pages already in the TLB.</summary>
public sealed unsafe partial class X86Cpu
{
    /// <summary>
    /// Copies up to <paramref name="count"/> elements forward from <paramref name="source"/> to
    /// <paramref name="destination"/> (linear) within their current pages when both pages are in
    /// the TLB with the needed rights; returns the number of elements copied (0: take the slow path).
    /// </summary>
    internal ulong CopyForward(ulong source, ulong destination, ulong count, int size)
    {
        if (!IsCanonical(source) || !IsCanonical(destination))
        {
            return 0;
        }

        ref TlbEntry s = ref TlbFor(source);
        ref TlbEntry d = ref TlbFor(destination);
        if (s.ReadTag != Tag(source) || d.WriteTag != Tag(destination))
        {
            return 0;
        }

        ulong bytes = Math.Min(0x1000 - (source & 0xFFF), 0x1000 - (destination & 0xFFF));
        ulong elements = Math.Min(count, bytes / (ulong)size);
        if (elements == 0)
        {
            return 0;
        }

        ulong length = elements * (ulong)size;
        byte* from = (byte*)((nint)source + s.Addend);
        byte* to = (byte*)((nint)destination + d.Addend);

        // A forward element copy onto an overlapping later address replicates the pattern; leave that to the slow path.
        if (to > from && to < from + length)
        {
            return 0;
        }

        Buffer.MemoryCopy(from, to, length, length);
        return elements;
    }

    /// <summary>
    /// <see cref="CopyForward"/> when the two pages are not both in the TLB: translates the source
    /// page for reading, then the destination page for writing (their faults in that order, as the
    /// first element would raise them) and copies up to the nearer page end. Both pages can map to
    /// one TLB slot (linear addresses a multiple of the TLB's reach apart), where filling one entry
    /// evicts the other and the element-at-a-time path walks both pages for every element. Returns
    /// 0 (take the element path) for MMIO, a write-filtered frame, watched pages or an overlap.
    /// </summary>
    internal ulong CopyForwardTranslated(ulong source, ulong destination, ulong count, int size)
    {
        if (_dataBreakpointsEnabled || !IsCanonical(source) || !IsCanonical(destination))
        {
            return 0;
        }

        ulong bytes = Math.Min(0x1000 - (source & 0xFFF), 0x1000 - (destination & 0xFFF));
        ulong elements = Math.Min(count, bytes / (ulong)size);
        if (elements == 0)
        {
            return 0;
        }

        byte* from = (byte*)TranslatePage(source, MemoryAccess.Read);
        if (from == null)
        {
            return 0;
        }

        byte* to = (byte*)TranslatePage(destination, MemoryAccess.Write);
        if (to == null || _lastFiltered)
        {
            return 0;
        }

        bool tracked = _lastTracked;
        ulong physical = _lastPhysical;
        ulong length = elements * (ulong)size;
        if (to > from && to < from + length)
        {
            return 0;
        }

        Buffer.MemoryCopy(from, to, length, length);
        if (tracked)
        {
            OnTrackedStore(physical, (int)length);
        }

        return elements;
    }

    /// <summary>Fills up to <paramref name="count"/> elements forward at <paramref name="destination"/> within its page (see <see cref="CopyForward"/>).</summary>
    internal ulong FillForward(ulong destination, ulong count, int size, ulong value)
    {
        if (!IsCanonical(destination))
        {
            return 0;
        }

        ref TlbEntry d = ref TlbFor(destination);
        if (d.WriteTag != Tag(destination))
        {
            return 0;
        }

        ulong elements = Math.Min(count, (0x1000 - (destination & 0xFFF)) / (ulong)size);
        if (elements == 0)
        {
            return 0;
        }

        byte* to = (byte*)((nint)destination + d.Addend);
        switch (size)
        {
            case 1:
                new Span<byte>(to, (int)elements).Fill((byte)value);
                break;
            case 2:
                new Span<ushort>(to, (int)elements).Fill((ushort)value);
                break;
            case 4:
                new Span<uint>(to, (int)elements).Fill((uint)value);
                break;
            default:
                new Span<ulong>(to, (int)elements).Fill(value);
                break;
        }

        return elements;
    }

    /// <summary>
    /// REPE/REPNE CMPS forward within the current pages of <paramref name="source"/> and
    /// <paramref name="destination"/> (both readable in the TLB): compares up to <paramref name="count"/>
    /// elements and stops after the first whose equality is not <paramref name="whileEqual"/>. Returns
    /// the number of elements compared (0: take the slow path); <paramref name="a"/> and
    /// <paramref name="b"/> are the last pair compared (source, destination).
    /// </summary>
    internal ulong CompareForward(ulong source, ulong destination, ulong count, int size, bool whileEqual, out ulong a, out ulong b)
    {
        a = b = 0;
        if (!IsCanonical(source) || !IsCanonical(destination))
        {
            return 0;
        }

        ref TlbEntry s = ref TlbFor(source);
        ref TlbEntry d = ref TlbFor(destination);
        if (s.ReadTag != Tag(source) || d.ReadTag != Tag(destination))
        {
            return 0;
        }

        ulong bytes = Math.Min(0x1000 - (source & 0xFFF), 0x1000 - (destination & 0xFFF));
        ulong elements = Math.Min(count, bytes / (ulong)size);
        if (elements == 0)
        {
            return 0;
        }

        byte* from = (byte*)((nint)source + s.Addend);
        byte* to = (byte*)((nint)destination + d.Addend);
        ulong done;
        if (whileEqual)
        {
            int common = new ReadOnlySpan<byte>(from, (int)(elements * (ulong)size)).CommonPrefixLength(new ReadOnlySpan<byte>(to, (int)(elements * (ulong)size)));
            done = Math.Min(elements, ((ulong)common / (ulong)size) + 1);
        }
        else
        {
            done = elements;
            for (ulong i = 0; i < elements; i++)
            {
                if (LoadElement(from + (i * (ulong)size), size) == LoadElement(to + (i * (ulong)size), size))
                {
                    done = i + 1;
                    break;
                }
            }
        }

        a = LoadElement(from + ((done - 1) * (ulong)size), size);
        b = LoadElement(to + ((done - 1) * (ulong)size), size);
        return done;
    }

    /// <summary>
    /// REPE/REPNE SCAS forward within the current page of <paramref name="destination"/>: compares up to
    /// <paramref name="count"/> elements with <paramref name="value"/> and stops after the first whose
    /// equality is not <paramref name="whileEqual"/>. Returns the number compared (0: slow path);
    /// <paramref name="last"/> is the last element compared.
    /// </summary>
    internal ulong ScanForward(ulong destination, ulong count, int size, ulong value, bool whileEqual, out ulong last)
    {
        last = 0;
        if (!IsCanonical(destination))
        {
            return 0;
        }

        ref TlbEntry d = ref TlbFor(destination);
        if (d.ReadTag != Tag(destination))
        {
            return 0;
        }

        ulong elements = Math.Min(count, (0x1000 - (destination & 0xFFF)) / (ulong)size);
        if (elements == 0)
        {
            return 0;
        }

        byte* to = (byte*)((nint)destination + d.Addend);
        int n = (int)elements;
        int stop = size switch
        {
            1 => whileEqual ? new ReadOnlySpan<byte>(to, n).IndexOfAnyExcept((byte)value) : new ReadOnlySpan<byte>(to, n).IndexOf((byte)value),
            2 => whileEqual ? new ReadOnlySpan<ushort>(to, n).IndexOfAnyExcept((ushort)value) : new ReadOnlySpan<ushort>(to, n).IndexOf((ushort)value),
            4 => whileEqual ? new ReadOnlySpan<uint>(to, n).IndexOfAnyExcept((uint)value) : new ReadOnlySpan<uint>(to, n).IndexOf((uint)value),
            _ => whileEqual ? new ReadOnlySpan<ulong>(to, n).IndexOfAnyExcept(value) : new ReadOnlySpan<ulong>(to, n).IndexOf(value),
        };
        ulong done = stop < 0 ? elements : (ulong)stop + 1;
        last = LoadElement(to + ((done - 1) * (ulong)size), size);
        return done;
    }

    private static ulong LoadElement(byte* p, int size) => size switch
    {
        1 => *p,
        2 => Unsafe.ReadUnaligned<ushort>(p),
        4 => Unsafe.ReadUnaligned<uint>(p),
        _ => Unsafe.ReadUnaligned<ulong>(p),
    };
}
