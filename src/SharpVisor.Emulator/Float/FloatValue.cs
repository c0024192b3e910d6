namespace SharpVisor.Emulator;

/// <summary>Classes of floating-point data.</summary>
internal enum FloatClass : byte
{
    Zero,
    Finite,
    Infinity,
    QuietNaN,
    SignalingNaN,

    /// <summary>x87 encodings no longer supported (pseudo-NaN, pseudo-infinity, unnormal): invalid operands.</summary>
    Unsupported,
}

/// <summary>
/// An unpacked floating-point value: for finite non-zero values, value = Significand × 2^(Exponent − 63)
/// with bit 63 of the significand set. NaNs keep their payload in the significand (integer bit set).
/// </summary>
internal struct FloatValue
{
    public FloatClass Class;
    public bool Sign;

    /// <summary>The input was a denormal (before any DAZ treatment).</summary>
    public bool Denormal;
    public int Exponent;
    public ulong Significand;

    public readonly bool IsNaN => Class is FloatClass.QuietNaN or FloatClass.SignalingNaN;

    public static FloatValue Zero(bool sign) => new() { Class = FloatClass.Zero, Sign = sign };

    public static FloatValue Infinity(bool sign) => new() { Class = FloatClass.Infinity, Sign = sign };
}
