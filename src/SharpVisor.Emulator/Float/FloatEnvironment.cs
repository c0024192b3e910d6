namespace SharpVisor.Emulator;

/// <summary>The control inputs of a floating-point operation and the exception flags it raises.</summary>
internal struct FloatEnvironment
{
    public int Rounding;

    /// <summary>MXCSR.FTZ: tiny results (with underflow masked) become zero.</summary>
    public bool FlushToZero;

    /// <summary>MXCSR.DAZ: denormal inputs are read as zero.</summary>
    public bool DenormalsAreZero;

    /// <summary>Underflow unmasked: signalled on tininess alone (the default, masked, is the zero value).</summary>
    public bool UnderflowUnmasked;

    /// <summary>Overflow unmasked: inexact is judged on the unbounded-exponent result.</summary>
    public bool OverflowUnmasked;

    public readonly bool UnderflowMasked => !UnderflowUnmasked;

    public readonly bool OverflowMasked => !OverflowUnmasked;

    public uint Flags;

    /// <summary>Set by rounding when the result's magnitude was rounded up (the x87 C1 bit).</summary>
    public bool RoundedUp;

    /// <summary>The x87 environment from FCW: rounding control; all exceptions' masks as FCW says.</summary>
    public static FloatEnvironment FromFcw(ushort fcw) => new()
    {
        Rounding = (fcw >> 10) & 3,
        UnderflowUnmasked = (fcw & 0x10) == 0,
        OverflowUnmasked = (fcw & 0x08) == 0,
    };

    public static FloatEnvironment FromMxcsr(uint mxcsr) => new()
    {
        Rounding = (int)((mxcsr >> 13) & 3),
        FlushToZero = (mxcsr & (1 << 15)) != 0,
        DenormalsAreZero = (mxcsr & (1 << 6)) != 0,
        UnderflowUnmasked = (mxcsr & (1 << 11)) == 0,
        OverflowUnmasked = (mxcsr & (1 << 10)) == 0,
    };
}
