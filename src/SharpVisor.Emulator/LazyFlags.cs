namespace SharpVisor.Emulator;

/// <summary>
/// Which instruction last wrote the arithmetic flags, when they are kept lazily
/// (<see cref="X86Cpu"/> stores operands and result and derives flags on demand).
/// The lazy code is <c>kind &lt;&lt; 2 | size index</c>; 0 means the flags live in RFLAGS.
/// </summary>
internal static class LazyFlags
{
    public const int None = 0;
    public const int Add = 1;
    public const int Adc = 2;
    public const int Sub = 3;
    public const int Sbb = 4;
    public const int Logic = 5;
    public const int Inc = 6;
    public const int Dec = 7;

    public static ReadOnlySpan<ulong> Masks => [0xFF, 0xFFFF, 0xFFFF_FFFF, ulong.MaxValue];
}
