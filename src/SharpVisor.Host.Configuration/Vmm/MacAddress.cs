using System.Globalization;
using System.Security.Cryptography;

namespace SharpVisor.Host.Vmm;

/// <summary>A 48-bit Ethernet address for a guest NIC, written aa:bb:cc:dd:ee:ff.</summary>
public readonly record struct MacAddress
{
    private readonly ulong _value;

    private MacAddress(ulong value)
    {
        _value = value;
    }

    public bool IsMulticast => (Byte(0) & 1) != 0;

    public bool IsZero => _value == 0;

    /// <summary>A random unicast, locally administered address, as a NIC without a configured MAC gets.</summary>
    public static MacAddress Random()
    {
        Span<byte> bytes = stackalloc byte[6];
        RandomNumberGenerator.Fill(bytes);
        bytes[0] = (byte)((bytes[0] & 0xFC) | 0x02);
        return FromBytes(bytes);
    }

    public static MacAddress FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != 6)
        {
            throw new ArgumentException("a MAC address has 6 bytes", nameof(bytes));
        }

        ulong value = 0;
        foreach (byte b in bytes)
        {
            value = (value << 8) | b;
        }

        return new MacAddress(value);
    }

    /// <summary>Parses aa:bb:cc:dd:ee:ff (hex, either case); a guest NIC's address must be unicast and non-zero.</summary>
    public static MacAddress Parse(string text)
    {
        string[] parts = text.Split(':');
        if (parts.Length != 6 || parts.Any(p => p.Length != 2 || !byte.TryParse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out _)))
        {
            throw new ArgumentException($"MAC address '{text}' is not six hex bytes like 06:00:ac:10:00:02");
        }

        MacAddress mac = FromBytes(parts.Select(p => byte.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray());
        if (mac.IsMulticast || mac.IsZero)
        {
            throw new ArgumentException($"MAC address '{text}' is {(mac.IsZero ? "all zeros" : "a multicast address (lowest bit of the first byte set)")}; a NIC needs a unicast address");
        }

        return mac;
    }

    public byte[] ToBytes()
    {
        byte[] bytes = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            bytes[i] = Byte(i);
        }

        return bytes;
    }

    public override string ToString() => string.Join(':', ToBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    private byte Byte(int index) => (byte)(_value >> (8 * (5 - index)));
}
