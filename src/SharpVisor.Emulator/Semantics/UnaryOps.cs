using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>A one-operand integer operation (INC, DEC, NOT, NEG).</summary>
internal interface IUnaryOp
{
    static abstract ulong Compute(ulong a);

    static abstract void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong result)
        where TSize : struct, IOperandSize;
}

/// <summary>INC: CF is preserved.</summary>
internal struct IncOp : IUnaryOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(ulong a) => a + 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong result)
        where TSize : struct, IOperandSize
    {
        cpu._lazyCarry = cpu.CarryFlag ? 1UL : 0;
        cpu.SetLazy(LazyFlags.Inc, TSize.SizeIndex, a & TSize.Mask, 1, TSize.SignExtend(result));
    }
}

/// <summary>DEC: CF is preserved.</summary>
internal struct DecOp : IUnaryOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(ulong a) => a - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong result)
        where TSize : struct, IOperandSize
    {
        cpu._lazyCarry = cpu.CarryFlag ? 1UL : 0;
        cpu.SetLazy(LazyFlags.Dec, TSize.SizeIndex, a & TSize.Mask, 1, TSize.SignExtend(result));
    }
}

/// <summary>NOT: no flags.</summary>
internal struct NotOp : IUnaryOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(ulong a) => ~a;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong result)
        where TSize : struct, IOperandSize
    {
    }
}

/// <summary>NEG: flags of 0 - a.</summary>
internal struct NegOp : IUnaryOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Compute(ulong a) => 0 - a;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetFlags<TSize>(X86Cpu cpu, ulong a, ulong result)
        where TSize : struct, IOperandSize =>
        cpu.SetLazy(LazyFlags.Sub, TSize.SizeIndex, 0, a & TSize.Mask, TSize.SignExtend(result));
}
