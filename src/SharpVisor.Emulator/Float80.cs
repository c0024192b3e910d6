namespace SharpVisor.Emulator;

/// <summary>An x87 80-bit extended-precision value: explicit-integer-bit significand and sign/exponent word.</summary>
public struct Float80
{
    public ulong Significand;

    /// <summary>Bit 15 = sign, bits 0-14 = biased exponent.</summary>
    public ushort SignExponent;

    public Float80(ulong significand, ushort signExponent)
    {
        Significand = significand;
        SignExponent = signExponent;
    }

    public readonly bool Sign => (SignExponent & 0x8000) != 0;

    public readonly int Exponent => SignExponent & 0x7FFF;

    public override readonly string ToString() => $"{SignExponent:x4}:{Significand:x16}";
}
