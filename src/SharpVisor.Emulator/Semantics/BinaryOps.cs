using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

// The ALU operations as types for the generic handlers. Flags are kept lazily: operands
// masked to the size and the result sign-extended (see X86Cpu.SetLazy).

/// <summary>ADD.</summary>
internal struct AddOp : IBinaryOp
{
    public static bool WritesResult => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Add, TSize.SizeIndex, a & TSize.Mask, b & TSize.Mask, TSize.SignExtend(result));
}

/// <summary>ADC: ADD with carry-in.</summary>
internal struct AdcOp : IBinaryOp
{
    public static bool WritesResult => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a + b + (cpu.CarryFlag ? 1UL : 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize
    {
        cpu._lazyCarry = cpu.CarryFlag ? 1UL : 0;
        cpu.SetLazy(LazyFlags.Adc, TSize.SizeIndex, a & TSize.Mask, b & TSize.Mask, TSize.SignExtend(result));
    }
}

/// <summary>SUB.</summary>
internal struct SubOp : IBinaryOp
{
    public static bool WritesResult => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Sub, TSize.SizeIndex, a & TSize.Mask, b & TSize.Mask, TSize.SignExtend(result));
}

/// <summary>CMP: SUB without the result.</summary>
internal struct CmpOp : IBinaryOp
{
    public static bool WritesResult => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Sub, TSize.SizeIndex, a & TSize.Mask, b & TSize.Mask, TSize.SignExtend(result));
}

/// <summary>SBB: SUB with borrow-in.</summary>
internal struct SbbOp : IBinaryOp
{
    public static bool WritesResult => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a - b - (cpu.CarryFlag ? 1UL : 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize
    {
        cpu._lazyCarry = cpu.CarryFlag ? 1UL : 0;
        cpu.SetLazy(LazyFlags.Sbb, TSize.SizeIndex, a & TSize.Mask, b & TSize.Mask, TSize.SignExtend(result));
    }
}

/// <summary>AND.</summary>
internal struct AndOp : IBinaryOp
{
    public static bool WritesResult => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a & b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Logic, TSize.SizeIndex, 0, 0, TSize.SignExtend(result));
}

/// <summary>TEST: AND without the result.</summary>
internal struct TestOp : IBinaryOp
{
    public static bool WritesResult => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a & b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Logic, TSize.SizeIndex, 0, 0, TSize.SignExtend(result));
}

/// <summary>OR.</summary>
internal struct OrOp : IBinaryOp
{
    public static bool WritesResult => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a | b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Logic, TSize.SizeIndex, 0, 0, TSize.SignExtend(result));
}

/// <summary>XOR.</summary>
internal struct XorOp : IBinaryOp
{
    public static bool WritesResult => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(X86Cpu cpu, ulong a, ulong b) => a ^ b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong b, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Logic, TSize.SizeIndex, 0, 0, TSize.SignExtend(result));
}
