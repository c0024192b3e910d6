namespace SharpVisor.Devices.Legacy;

/// <summary>
/// A key of a PS/2 (MF2) keyboard and its scan codes in the three scan code sets: the make
/// code the keyboard sends when the key goes down and the break code when it comes up.
/// </summary>
/// <remarks>
/// Set 1 breaks set bit 7 of the last byte (E0 53 → E0 D3); sets 2 and 3 put F0 before the
/// last byte (E0 71 → E0 F0 71). Set 3 codes are sent make/break, as Linux configures that set
/// (command 0xFA). Only the keys SharpVisor types are here.
/// </remarks>
public sealed class Ps2Key
{
    private const byte Set23BreakPrefix = 0xF0;
    private const byte Set1BreakBit = 0x80;

    private readonly byte[] _set1;
    private readonly byte[] _set2;
    private readonly byte[] _set3;

    private Ps2Key(string name, byte[] set1, byte[] set2, byte[] set3)
    {
        Name = name;
        _set1 = set1;
        _set2 = set2;
        _set3 = set3;
    }

    public static Ps2Key LeftCtrl { get; } = new("LeftCtrl", [0x1D], [0x14], [0x11]);

    public static Ps2Key LeftAlt { get; } = new("LeftAlt", [0x38], [0x11], [0x19]);

    public static Ps2Key Delete { get; } = new("Delete", [0xE0, 0x53], [0xE0, 0x71], [0x64]);

    public string Name { get; }

    /// <summary>The bytes the keyboard sends in <paramref name="scanCodeSet"/> (1-3) when the key goes down.</summary>
    public byte[] Make(int scanCodeSet) => (byte[])Codes(scanCodeSet).Clone();

    /// <summary>The bytes the keyboard sends in <paramref name="scanCodeSet"/> (1-3) when the key comes up.</summary>
    public byte[] Break(int scanCodeSet)
    {
        byte[] make = Codes(scanCodeSet);
        if (scanCodeSet == 1)
        {
            byte[] result = (byte[])make.Clone();
            result[^1] |= Set1BreakBit;
            return result;
        }

        byte[] broken = new byte[make.Length + 1];
        make.AsSpan(0, make.Length - 1).CopyTo(broken);
        broken[^2] = Set23BreakPrefix;
        broken[^1] = make[^1];
        return broken;
    }

    public override string ToString() => Name;

    private byte[] Codes(int scanCodeSet) => scanCodeSet switch
    {
        1 => _set1,
        2 => _set2,
        3 => _set3,
        _ => throw new ArgumentOutOfRangeException(nameof(scanCodeSet), scanCodeSet, "scan code sets are 1, 2 and 3"),
    };
}
