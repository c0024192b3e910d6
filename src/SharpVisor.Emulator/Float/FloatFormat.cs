namespace SharpVisor.Emulator;

/// <summary>A binary floating-point format: precision (significand bits including the integer bit) and exponent range.</summary>
internal readonly record struct FloatFormat(int Precision, int Bias, int MaxBiasedExponent, bool ExplicitInteger)
{
    public static readonly FloatFormat Single = new(24, 127, 255, false);
    public static readonly FloatFormat Double = new(53, 1023, 2047, false);
    public static readonly FloatFormat Extended = new(64, 16383, 32767, true);

    /// <summary>The x87 extended format rounded to a smaller precision (precision control), keeping the exponent range.</summary>
    public FloatFormat WithPrecision(int precision) => this with { Precision = precision };

    public int TotalBits => ExplicitInteger ? 80 : Precision + (MaxBiasedExponent == 255 ? 8 : 11);
}
