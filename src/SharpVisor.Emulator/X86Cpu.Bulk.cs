using System.Runtime.CompilerServices;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>Page-at-a-time fast paths for forward REP MOVS/STOS between RAM pages already in the TLB.</summary>
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
}
