using SharpVisor.Machine;

namespace SharpVisor.Emulator;

/// <summary>A segment register with its hidden descriptor cache.</summary>
internal struct SegmentCache
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;

    /// <summary>Descriptor attributes in VMX access-rights layout: type, S, DPL, P, AVL, L, D/B, G, and bit 16 = unusable.</summary>
    public uint Attributes;

    public const uint AttrS = 1 << 4;
    public const uint AttrPresent = 1 << 7;
    public const uint AttrLong = 1 << 13;
    public const uint AttrDefaultBig = 1 << 14;
    public const uint AttrGranularity = 1 << 15;
    public const uint AttrUnusable = 1 << 16;

    public readonly int Type => (int)(Attributes & 0xF);

    public readonly int Dpl => (int)((Attributes >> 5) & 3);

    public readonly bool Long => (Attributes & AttrLong) != 0;

    public readonly bool DefaultBig => (Attributes & AttrDefaultBig) != 0;

    public readonly bool Unusable => (Attributes & AttrUnusable) != 0;

    public readonly bool Present => (Attributes & AttrPresent) != 0;

    /// <summary>A system descriptor (LDT, TSS, gate): S = 0.</summary>
    public readonly bool IsSystem => (Attributes & AttrS) == 0;

    public readonly bool IsData => (Attributes & (AttrS | 8)) == AttrS;

    /// <summary>A conforming code segment (runs at the caller's privilege).</summary>
    public readonly bool Conforming => (Attributes & (AttrS | 8 | 4)) == (AttrS | 8 | 4);

    public readonly bool IsCode => (Attributes & AttrS) != 0 && (Attributes & 8) != 0;

    public readonly bool ExpandDown => (Attributes & (AttrS | 8 | 4)) == (AttrS | 4);

    public readonly bool Writable => (Attributes & (AttrS | 8 | 2)) == (AttrS | 2);

    /// <summary>Readable: any data segment, or a code segment with the R bit.</summary>
    public readonly bool Readable => (Attributes & 8) == 0 || (Attributes & 2) != 0;

    public static SegmentCache FromMachine(in SegmentRegister s)
    {
        uint attributes = (uint)(s.Type & 0xF)
            | (s.CodeOrData ? AttrS : 0)
            | (uint)(s.Dpl & 3) << 5
            | (s.Present ? AttrPresent : 0)
            | (s.Long ? AttrLong : 0)
            | (s.DefaultBig ? AttrDefaultBig : 0)
            | (s.Granularity ? AttrGranularity : 0)
            | (s.Unusable ? AttrUnusable : 0);
        return new SegmentCache { Base = s.Base, Limit = s.Limit, Selector = s.Selector, Attributes = attributes };
    }

    public readonly SegmentRegister ToMachine() => new()
    {
        Base = Base,
        Limit = Limit,
        Selector = Selector,
        Type = (byte)Type,
        Present = (Attributes & AttrPresent) != 0,
        Dpl = (byte)Dpl,
        DefaultBig = DefaultBig,
        Long = Long,
        Granularity = (Attributes & AttrGranularity) != 0,
        CodeOrData = (Attributes & AttrS) != 0,
        Unusable = Unusable,
    };

    /// <summary>The hidden part a legacy (8-byte) code, data or system descriptor loads.</summary>
    public static SegmentCache FromDescriptor(ushort selector, ulong descriptor)
    {
        ulong baseAddress = ((descriptor >> 16) & 0xFF_FFFF) | (((descriptor >> 56) & 0xFF) << 24);
        uint limit = (uint)((descriptor & 0xFFFF) | ((descriptor >> 32) & 0xF_0000));
        uint attributes = (uint)(((descriptor >> 40) & 0xFF) | (((descriptor >> 52) & 0xF) << 12));
        if ((attributes & AttrGranularity) != 0)
        {
            limit = (limit << 12) | 0xFFF;
        }

        return new SegmentCache { Base = baseAddress, Limit = limit, Selector = selector, Attributes = attributes };
    }

    /// <summary>A segment register loaded with a null selector: unusable until loaded again.</summary>
    public static SegmentCache Null(ushort selector, int dpl = 0) =>
        new() { Selector = selector, Attributes = AttrUnusable | (uint)(dpl & 3) << 5 };

    /// <summary>A real-mode segment: base = selector * 16, 64 KiB limit, read/write data.</summary>
    public static SegmentCache RealMode(ushort selector, bool code) => new()
    {
        Base = (ulong)selector << 4,
        Limit = 0xFFFF,
        Selector = selector,
        Attributes = (code ? 0xBu : 0x3u) | AttrS | AttrPresent,
    };
}
