namespace SharpVisor.Emulator;

/// <summary>Floating-point exception flags, in MXCSR / x87 status-word bit order.</summary>
internal static class FloatFlags
{
    public const uint Invalid = 1;
    public const uint Denormal = 2;
    public const uint DivideByZero = 4;
    public const uint Overflow = 8;
    public const uint Underflow = 16;
    public const uint Inexact = 32;
    public const uint All = 63;
}
