namespace SharpVisor.Machine;

/// <summary>A segment register with its hidden descriptor cache, as KVM's kvm_segment holds it.</summary>
public record struct SegmentRegister
{
    public ulong Base;
    public uint Limit;
    public ushort Selector;

    /// <summary>Descriptor type field (4 bits: code/data, accessed, read/write, conforming/expand-down).</summary>
    public byte Type;
    public bool Present;
    public byte Dpl;

    /// <summary>D/B bit: 32-bit default operand size.</summary>
    public bool DefaultBig;

    /// <summary>L bit: 64-bit code segment.</summary>
    public bool Long;
    public bool Granularity;

    /// <summary>S bit: code or data (true) versus system (false).</summary>
    public bool CodeOrData;
    public bool Unusable;

    /// <summary>A flat 4 GiB segment of the given type (0xB = code exec/read accessed, 0x3 = data read/write accessed).</summary>
    public static SegmentRegister Flat(ushort selector, byte type, bool longMode, bool defaultBig) => new()
    {
        Base = 0,
        Limit = 0xFFFF_FFFF,
        Selector = selector,
        Type = type,
        Present = true,
        Dpl = 0,
        DefaultBig = defaultBig,
        Long = longMode,
        Granularity = true,
        CodeOrData = true,
    };

    /// <summary>The hidden-cache view of a code or data descriptor loaded through <paramref name="selector"/>.</summary>
    public static SegmentRegister FromDescriptor(ushort selector, ulong descriptor)
    {
        uint rawLimit = (uint)(descriptor & 0xFFFF) | (uint)((descriptor >> 32) & 0xF_0000);
        bool granularity = ((descriptor >> 55) & 1) != 0;
        return new SegmentRegister
        {
            Base = ((descriptor >> 16) & 0xFF_FFFF) | (((descriptor >> 56) & 0xFF) << 24),
            Limit = granularity ? (rawLimit << 12) | 0xFFF : rawLimit,
            Selector = selector,
            Type = (byte)((descriptor >> 40) & 0xF),
            CodeOrData = ((descriptor >> 44) & 1) != 0,
            Dpl = (byte)((descriptor >> 45) & 3),
            Present = ((descriptor >> 47) & 1) != 0,
            Long = ((descriptor >> 53) & 1) != 0,
            DefaultBig = ((descriptor >> 54) & 1) != 0,
            Granularity = granularity,
        };
    }
}
