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
}
