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

    /// <summary>A real-mode segment: base = selector * 16, 64 KiB limit, read/write data.</summary>
    public static SegmentCache RealMode(ushort selector, bool code) => new()
    {
        Base = (ulong)selector << 4,
        Limit = 0xFFFF,
        Selector = selector,
        Attributes = (code ? 0xBu : 0x3u) | AttrS | AttrPresent,
    };
}
