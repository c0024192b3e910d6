using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>
/// An operand size as a type, so generic handlers are specialized by the JIT per size
/// (no size switches at run time). Values travel as <see cref="ulong"/>; loads zero-extend.
/// </summary>
internal interface IOperandSize
{
    static abstract int Bytes { get; }

    static abstract int Bits { get; }

    /// <summary>0, 1, 2, 3 for 8, 16, 32, 64 bits (the lazy-flags size index).</summary>
    static abstract int SizeIndex { get; }

    static abstract ulong Mask { get; }

    static abstract ulong SignBit { get; }

    static abstract ulong SignExtend(ulong value);

    static abstract ulong ReadReg(X86Cpu cpu, int offset);

    /// <summary>Writes a register the way x86 does: 8/16-bit writes merge, 32-bit writes zero-extend.</summary>
    static abstract void WriteReg(X86Cpu cpu, int offset, ulong value);

    static abstract ulong Read(X86Cpu cpu, ulong linear);

    static abstract void Write(X86Cpu cpu, ulong linear, ulong value);

    static abstract ulong Load(ref byte location);

    static abstract void Store(ref byte location, ulong value);

    /// <summary>Atomic compare-exchange on host memory; returns the previous value.</summary>
    static abstract ulong CompareExchange(ref byte location, ulong value, ulong comparand);
}
