using System.Text;

namespace SharpVisor.Boot.Acpi;

/// <summary>
/// A small encoder for ACPI Machine Language (ACPI 6.5 §20): the named objects, data objects
/// and resource templates a VMM's DSDT needs. Each call appends one term; nested bodies are
/// built by callbacks and wrapped with their PkgLength afterwards.
/// </summary>
public sealed class AmlBuilder
{
    public const byte ZeroOp = 0x00;
    public const byte OneOp = 0x01;
    public const byte NameOp = 0x08;
    public const byte BytePrefix = 0x0A;
    public const byte WordPrefix = 0x0B;
    public const byte DWordPrefix = 0x0C;
    public const byte StringPrefix = 0x0D;
    public const byte QWordPrefix = 0x0E;
    public const byte ScopeOp = 0x10;
    public const byte BufferOp = 0x11;
    public const byte PackageOp = 0x12;
    public const byte MethodOp = 0x14;
    public const byte DualNamePrefix = 0x2E;
    public const byte MultiNamePrefix = 0x2F;
    public const byte ExtOpPrefix = 0x5B;
    public const byte DeviceOp = 0x82;
    public const byte RootChar = 0x5C;
    public const byte ParentPrefixChar = 0x5E;
    public const byte ReturnOp = 0xA4;
    public const byte OnesOp = 0xFF;

    private readonly List<byte> _bytes = new();

    /// <summary>How many terms were appended at this level (a package's NumElements).</summary>
    public int TermCount { get; private set; }

    public byte[] ToArray() => _bytes.ToArray();

    public AmlBuilder Name(string name, Action<AmlBuilder> value)
    {
        _bytes.Add(NameOp);
        _bytes.AddRange(EncodeNameString(name));
        AppendNested(value, out _);
        TermCount++;
        return this;
    }

    public AmlBuilder Scope(string name, Action<AmlBuilder> body) => Block([ScopeOp], name, [], body);

    public AmlBuilder Device(string name, Action<AmlBuilder> body) => Block([ExtOpPrefix, DeviceOp], name, [], body);

    public AmlBuilder Method(string name, int argumentCount, bool serialized, Action<AmlBuilder> body)
    {
        if (argumentCount is < 0 or > 7)
        {
            throw new ArgumentOutOfRangeException(nameof(argumentCount), "a method takes 0 to 7 arguments");
        }

        return Block([MethodOp], name, [(byte)(argumentCount | (serialized ? 0x08 : 0))], body);
    }

    public AmlBuilder Return(Action<AmlBuilder> value)
    {
        _bytes.Add(ReturnOp);
        AppendNested(value, out _);
        TermCount++;
        return this;
    }

    /// <summary>The shortest encoding: ZeroOp, OneOp, OnesOp, or a Byte/Word/DWord/QWord constant.</summary>
    public AmlBuilder Integer(ulong value)
    {
        switch (value)
        {
            case 0:
                _bytes.Add(ZeroOp);
                break;
            case 1:
                _bytes.Add(OneOp);
                break;
            case ulong.MaxValue:
                _bytes.Add(OnesOp);
                break;
            case <= 0xFF:
                _bytes.Add(BytePrefix);
                _bytes.Add((byte)value);
                break;
            case <= 0xFFFF:
                _bytes.Add(WordPrefix);
                AppendLittleEndian(value, 2);
                break;
            case <= 0xFFFF_FFFF:
                _bytes.Add(DWordPrefix);
                AppendLittleEndian(value, 4);
                break;
            default:
                _bytes.Add(QWordPrefix);
                AppendLittleEndian(value, 8);
                break;
        }

        TermCount++;
        return this;
    }

    public AmlBuilder String(string value)
    {
        if (value.Any(c => c is < (char)1 or > (char)0x7F))
        {
            throw new ArgumentException("AML strings are ASCII without NUL", nameof(value));
        }

        _bytes.Add(StringPrefix);
        _bytes.AddRange(Encoding.ASCII.GetBytes(value));
        _bytes.Add(0);
        TermCount++;
        return this;
    }

    /// <summary>A compressed EISA ID ("PNP0A03") as the DWord iasl's EISAID() produces.</summary>
    public AmlBuilder EisaId(string id)
    {
        _bytes.Add(DWordPrefix);
        AppendLittleEndian(EncodeEisaId(id), 4);
        TermCount++;
        return this;
    }

    public AmlBuilder Package(Action<AmlBuilder> elements)
    {
        var inner = new AmlBuilder();
        elements(inner);
        if (inner.TermCount > 255)
        {
            throw new InvalidOperationException("a Package holds at most 255 elements (VarPackage is not supported)");
        }

        var body = new List<byte> { (byte)inner.TermCount };
        body.AddRange(inner._bytes);
        _bytes.Add(PackageOp);
        _bytes.AddRange(EncodePkgLength(body.Count));
        _bytes.AddRange(body);
        TermCount++;
        return this;
    }

    public AmlBuilder Buffer(ReadOnlySpan<byte> data)
    {
        var size = new AmlBuilder();
        size.Integer((ulong)data.Length);
        var body = new List<byte>(size._bytes);
        body.AddRange(data.ToArray());
        _bytes.Add(BufferOp);
        _bytes.AddRange(EncodePkgLength(body.Count));
        _bytes.AddRange(body);
        TermCount++;
        return this;
    }

    /// <summary>A Buffer of resource descriptors closed by an End Tag, as ResourceTemplate() in ASL.</summary>
    public AmlBuilder ResourceTemplate(Action<AmlResourceTemplate> items)
    {
        var template = new AmlResourceTemplate();
        items(template);
        return Buffer(template.ToArray());
    }

    /// <summary>
    /// PkgLength for a body of <paramref name="bodyLength"/> bytes. The encoded length counts
    /// itself: one byte holds up to 63; otherwise bits 7:6 of the lead byte give 1-3 following
    /// bytes, its low nibble the least significant bits.
    /// </summary>
    public static byte[] EncodePkgLength(int bodyLength)
    {
        if (bodyLength + 1 < 0x40)
        {
            return [(byte)(bodyLength + 1)];
        }

        for (int extra = 1; extra <= 3; extra++)
        {
            int total = bodyLength + 1 + extra;
            if (total < 1 << (4 + (8 * extra)))
            {
                byte[] encoded = new byte[1 + extra];
                encoded[0] = (byte)((extra << 6) | (total & 0x0F));
                for (int i = 1; i <= extra; i++)
                {
                    encoded[i] = (byte)(total >> (4 + (8 * (i - 1))));
                }

                return encoded;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(bodyLength), "AML package too large");
    }

    /// <summary>"\_SB.PCI0" → RootChar, DualNamePrefix, "_SB_", "PCI0"; short segments are padded with '_'.</summary>
    public static byte[] EncodeNameString(string name)
    {
        var bytes = new List<byte>();
        int i = 0;
        if (name.StartsWith('\\'))
        {
            bytes.Add(RootChar);
            i = 1;
        }
        else
        {
            while (i < name.Length && name[i] == '^')
            {
                bytes.Add(ParentPrefixChar);
                i++;
            }
        }

        string rest = name[i..];
        string[] segments = rest.Length == 0 ? [] : rest.Split('.');
        if (segments.Length == 0)
        {
            bytes.Add(0); // NullName
        }
        else if (segments.Length == 2)
        {
            bytes.Add(DualNamePrefix);
        }
        else if (segments.Length > 2)
        {
            if (segments.Length > 255)
            {
                throw new ArgumentException($"name '{name}' has too many segments", nameof(name));
            }

            bytes.Add(MultiNamePrefix);
            bytes.Add((byte)segments.Length);
        }

        foreach (string segment in segments)
        {
            bytes.AddRange(EncodeNameSegment(segment, name));
        }

        return bytes.ToArray();
    }

    /// <summary>Compresses an EISA ID: three letters of 5 bits and four hex digits, stored big-endian.</summary>
    public static uint EncodeEisaId(string id)
    {
        if (id.Length != 7 || !id[..3].All(c => c is >= 'A' and <= 'Z') || !id[3..].All(Uri.IsHexDigit))
        {
            throw new ArgumentException($"'{id}' is not an EISA ID like PNP0A03", nameof(id));
        }

        uint vendor = ((uint)(id[0] - 0x40) << 10) | ((uint)(id[1] - 0x40) << 5) | (uint)(id[2] - 0x40);
        uint product = Convert.ToUInt32(id[3..], 16);
        uint bigEndian = (vendor << 16) | product;
        return System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(bigEndian);
    }

    private static byte[] EncodeNameSegment(string segment, string fullName)
    {
        if (segment.Length is 0 or > 4 || !segment.All(c => c is (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_') || char.IsDigit(segment[0]))
        {
            throw new ArgumentException($"'{segment}' in '{fullName}' is not an ACPI name segment", nameof(fullName));
        }

        return Encoding.ASCII.GetBytes(segment.PadRight(4, '_'));
    }

    private AmlBuilder Block(byte[] opcode, string name, byte[] afterName, Action<AmlBuilder> body)
    {
        var inner = new AmlBuilder();
        body(inner);
        var content = new List<byte>(EncodeNameString(name));
        content.AddRange(afterName);
        content.AddRange(inner._bytes);
        _bytes.AddRange(opcode);
        _bytes.AddRange(EncodePkgLength(content.Count));
        _bytes.AddRange(content);
        TermCount++;
        return this;
    }

    private void AppendNested(Action<AmlBuilder> value, out int terms)
    {
        var inner = new AmlBuilder();
        value(inner);
        terms = inner.TermCount;
        if (terms != 1)
        {
            throw new InvalidOperationException($"expected exactly one value, got {terms}");
        }

        _bytes.AddRange(inner._bytes);
    }

    private void AppendLittleEndian(ulong value, int bytes)
    {
        for (int i = 0; i < bytes; i++)
        {
            _bytes.Add((byte)(value >> (8 * i)));
        }
    }
}
