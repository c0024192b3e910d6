namespace SharpVisor.Emulator;

/// <summary>IEEE rounding modes in MXCSR.RC / FCW.RC encoding.</summary>
internal static class RoundingMode
{
    public const int Nearest = 0;
    public const int Down = 1;
    public const int Up = 2;
    public const int TowardZero = 3;
}
