namespace SharpVisor.Emulator;

/// <summary>The control inputs of a floating-point operation and the exception flags it raises.</summary>
internal struct FloatEnvironment
{
    public int Rounding;

    /// <summary>MXCSR.FTZ: tiny results (with underflow masked) become zero.</summary>
    public bool FlushToZero;

    /// <summary>MXCSR.DAZ: denormal inputs are read as zero.</summary>
    public bool DenormalsAreZero;

    /// <summary>Whether underflow is masked (unmasked underflow is signalled on tininess alone).</summary>
    public bool UnderflowMasked;

    /// <summary>Whether overflow is masked (unmasked: inexact is judged on the unbounded-exponent result).</summary>
    public bool OverflowMasked;

    public uint Flags;

    public static FloatEnvironment FromMxcsr(uint mxcsr) => new()
    {
        Rounding = (int)((mxcsr >> 13) & 3),
        FlushToZero = (mxcsr & (1 << 15)) != 0,
        DenormalsAreZero = (mxcsr & (1 << 6)) != 0,
        UnderflowMasked = (mxcsr & (1 << 11)) != 0,
        OverflowMasked = (mxcsr & (1 << 10)) != 0,
    };
}
