namespace SharpVisor.Boot.Acpi;

/// <summary>
/// Resource descriptors (ACPI 6.5 §6.4) for _CRS: the small I/O port descriptor and the large
/// Word/DWord/QWord address-space and extended interrupt descriptors, closed by an End Tag.
/// Address spaces are encoded as a root bridge produces them: MinFixed, MaxFixed, PosDecode.
/// </summary>
public sealed class AmlResourceTemplate
{
    private const byte WordAddressSpace = 0x88;
    private const byte DWordAddressSpace = 0x87;
    private const byte QWordAddressSpace = 0x8A;
    private const byte ExtendedInterrupt = 0x89;
    private const byte IoPort = 0x47;
    private const byte EndTag = 0x79;

    private const byte ResourceTypeMemory = 0;
    private const byte ResourceTypeIo = 1;
    private const byte ResourceTypeBusNumber = 2;

    /// <summary>Producer, positive decode, minimum and maximum fixed.</summary>
    private const byte ProducerFixedFlags = 0x0C;

    private readonly List<byte> _bytes = new();

    /// <summary>WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, length).</summary>
    public AmlResourceTemplate WordBusNumber(ushort minimum, ushort maximum) =>
        WordSpace(ResourceTypeBusNumber, 0, minimum, maximum);

    /// <summary>WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, length).</summary>
    public AmlResourceTemplate WordIo(ushort minimum, ushort maximum) =>
        WordSpace(ResourceTypeIo, 0x03, minimum, maximum);

    /// <summary>IO(Decode16, min, max, alignment, length).</summary>
    public AmlResourceTemplate Io(ushort minimum, ushort maximum, byte alignment, byte length)
    {
        _bytes.AddRange([IoPort, 0x01, (byte)minimum, (byte)(minimum >> 8), (byte)maximum, (byte)(maximum >> 8), alignment, length]);
        return this;
    }

    /// <summary>DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable/NonCacheable, ReadWrite, 0, min, max, 0, length).</summary>
    public AmlResourceTemplate DWordMemory(uint minimum, uint maximum, bool cacheable = false)
    {
        CheckRange(minimum, maximum);
        _bytes.AddRange([DWordAddressSpace, 0x17, 0x00, ResourceTypeMemory, ProducerFixedFlags, MemoryFlags(cacheable)]);
        foreach (ulong v in new ulong[] { 0, minimum, maximum, 0, (ulong)maximum - minimum + 1 })
        {
            Append(v, 4);
        }

        return this;
    }

    /// <summary>QWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable/NonCacheable, ReadWrite, 0, min, max, 0, length).</summary>
    public AmlResourceTemplate QWordMemory(ulong minimum, ulong maximum, bool cacheable = false)
    {
        CheckRange(minimum, maximum);
        _bytes.AddRange([QWordAddressSpace, 0x2B, 0x00, ResourceTypeMemory, ProducerFixedFlags, MemoryFlags(cacheable)]);
        foreach (ulong v in new ulong[] { 0, minimum, maximum, 0, maximum - minimum + 1 })
        {
            Append(v, 8);
        }

        return this;
    }

    /// <summary>Interrupt(ResourceConsumer, Edge/Level, ActiveHigh/ActiveLow, Exclusive/Shared) { irqs }.</summary>
    public AmlResourceTemplate Interrupt(bool levelTriggered, bool activeLow, bool shared, params uint[] interrupts)
    {
        if (interrupts.Length is 0 or > 255)
        {
            throw new ArgumentException("an interrupt descriptor lists 1 to 255 interrupts", nameof(interrupts));
        }

        int length = 2 + (4 * interrupts.Length);
        byte flags = (byte)(0x01 | (levelTriggered ? 0 : 0x02) | (activeLow ? 0x04 : 0) | (shared ? 0x08 : 0));
        _bytes.AddRange([ExtendedInterrupt, (byte)length, (byte)(length >> 8), flags, (byte)interrupts.Length]);
        foreach (uint irq in interrupts)
        {
            Append(irq, 4);
        }

        return this;
    }

    /// <summary>The descriptors and the End Tag (checksum 0: "treat as correct").</summary>
    public byte[] ToArray() => [.. _bytes, EndTag, 0x00];

    private static byte MemoryFlags(bool cacheable) => (byte)(0x01 | (cacheable ? 0x02 : 0x00));

    private static void CheckRange(ulong minimum, ulong maximum)
    {
        if (maximum < minimum)
        {
            throw new ArgumentException($"range 0x{minimum:x}-0x{maximum:x} is empty");
        }
    }

    private AmlResourceTemplate WordSpace(byte type, byte typeFlags, ushort minimum, ushort maximum)
    {
        CheckRange(minimum, maximum);
        _bytes.AddRange([WordAddressSpace, 0x0D, 0x00, type, ProducerFixedFlags, typeFlags]);
        foreach (ulong v in new ulong[] { 0, minimum, maximum, 0, (ulong)maximum - minimum + 1 })
        {
            Append(v, 2);
        }

        return this;
    }

    private void Append(ulong value, int bytes)
    {
        for (int i = 0; i < bytes; i++)
        {
            _bytes.Add((byte)(value >> (8 * i)));
        }
    }
}
