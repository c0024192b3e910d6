namespace SharpVisor.Emulator;

/// <summary>
/// A two-operand integer operation (ADD, OR, ADC, SBB, AND, SUB, XOR, CMP, TEST): a pure
/// result function and the flag update, kept apart so locked and translated code can
/// commit the result before the flags.
/// </summary>
internal interface IBinaryOp
{
    /// <summary>False for CMP and TEST, which only set flags.</summary>
    static abstract bool WritesResult { get; }

    static abstract ulong Compute(X86Cpu cpu, ulong a, ulong b);

    static abstract void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize;
}
