using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static SharpVisor.Emulator.VectorHelpers;

namespace SharpVisor.Emulator;

// SSE/SSE2/SSSE3/SSE4 integer, logic, shuffle and move operations. The host is x86-64, so
// the exact integer semantics come from the host's own SIMD instructions.
#pragma warning disable SA1649, SA1402

internal struct PaddbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Add(a, b);
}

internal struct PaddwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Add(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PadddOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Add(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PaddqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Add(a.AsUInt64(), b.AsUInt64()).AsByte();
}

internal struct PsubbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Subtract(a, b);
}

internal struct PsubwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Subtract(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PsubdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Subtract(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PsubqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Subtract(a.AsUInt64(), b.AsUInt64()).AsByte();
}

internal struct PaddsbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.AddSaturate(a.AsSByte(), b.AsSByte()).AsByte();
}

internal struct PaddswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.AddSaturate(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PaddusbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.AddSaturate(a, b);
}

internal struct PadduswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.AddSaturate(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PsubsbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.SubtractSaturate(a.AsSByte(), b.AsSByte()).AsByte();
}

internal struct PsubswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.SubtractSaturate(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PsubusbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.SubtractSaturate(a, b);
}

internal struct PsubuswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.SubtractSaturate(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PmullwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.MultiplyLow(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PmulhwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.MultiplyHigh(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PmulhuwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.MultiplyHigh(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PmuludqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Multiply(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PmaddwdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.MultiplyAddAdjacent(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PavgbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Average(a, b);
}

internal struct PavgwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Average(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PminubOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Min(a, b);
}

internal struct PmaxubOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Max(a, b);
}

internal struct PminswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Min(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PmaxswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Max(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PsadbwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.SumAbsoluteDifferences(a, b).AsByte();
}

internal struct PcmpeqbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.CompareEqual(a, b);
}

internal struct PcmpeqwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.CompareEqual(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PcmpeqdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.CompareEqual(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PcmpgtbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.CompareGreaterThan(a.AsSByte(), b.AsSByte()).AsByte();
}

internal struct PcmpgtwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.CompareGreaterThan(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PcmpgtdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.CompareGreaterThan(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PandOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.And(a, b);
}

internal struct PandnOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.AndNot(a, b);
}

internal struct PorOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Or(a, b);
}

internal struct PxorOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.Xor(a, b);
}

internal struct PunpcklbwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackLow(a, b);
}

internal struct PunpcklwdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackLow(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PunpckldqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackLow(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PunpcklqdqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackLow(a.AsUInt64(), b.AsUInt64()).AsByte();
}

internal struct PunpckhbwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackHigh(a, b);
}

internal struct PunpckhwdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackHigh(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PunpckhdqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackHigh(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PunpckhqdqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.UnpackHigh(a.AsUInt64(), b.AsUInt64()).AsByte();
}

internal struct PacksswbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.PackSignedSaturate(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PackssdwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.PackSignedSaturate(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PackuswbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.PackUnsignedSaturate(a.AsInt16(), b.AsInt16());
}

internal struct PsllwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftLeftLogical(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PslldOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftLeftLogical(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PsllqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftLeftLogical(a.AsUInt64(), b.AsUInt64()).AsByte();
}

internal struct PsrlwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightLogical(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PsrldOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightLogical(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PsrlqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightLogical(a.AsUInt64(), b.AsUInt64()).AsByte();
}

internal struct PsrawOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightArithmetic(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PsradOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightArithmetic(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PsllwImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftLeftLogical(a.AsUInt16(), Count(imm)).AsByte();
}

internal struct PslldImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftLeftLogical(a.AsUInt32(), Count(imm).AsUInt32()).AsByte();
}

internal struct PsllqImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftLeftLogical(a.AsUInt64(), Count(imm).AsUInt64()).AsByte();
}

internal struct PsrlwImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightLogical(a.AsUInt16(), Count(imm)).AsByte();
}

internal struct PsrldImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightLogical(a.AsUInt32(), Count(imm).AsUInt32()).AsByte();
}

internal struct PsrlqImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightLogical(a.AsUInt64(), Count(imm).AsUInt64()).AsByte();
}

internal struct PsrawImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightArithmetic(a.AsInt16(), Count(imm).AsInt16()).AsByte();
}

internal struct PsradImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.ShiftRightArithmetic(a.AsInt32(), Count(imm).AsInt32()).AsByte();
}

internal struct PslldqImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => FromUInt128(imm > 15 ? UInt128.Zero : ToUInt128(a) << (imm * 8));
}

internal struct PsrldqImmOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => FromUInt128(imm > 15 ? UInt128.Zero : ToUInt128(a) >> (imm * 8));
}

internal struct PshufdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt32().GetElement(imm & 3), b.AsUInt32().GetElement((imm >> 2) & 3), b.AsUInt32().GetElement((imm >> 4) & 3), b.AsUInt32().GetElement(imm >> 6)).AsByte();
}

internal struct PshuflwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt16().GetElement(imm & 3), b.AsUInt16().GetElement((imm >> 2) & 3), b.AsUInt16().GetElement((imm >> 4) & 3), b.AsUInt16().GetElement(imm >> 6), b.AsUInt16().GetElement(4), b.AsUInt16().GetElement(5), b.AsUInt16().GetElement(6), b.AsUInt16().GetElement(7)).AsByte();
}

internal struct PshufhwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt16().GetElement(0), b.AsUInt16().GetElement(1), b.AsUInt16().GetElement(2), b.AsUInt16().GetElement(3), b.AsUInt16().GetElement(4 + (imm & 3)), b.AsUInt16().GetElement(4 + ((imm >> 2) & 3)), b.AsUInt16().GetElement(4 + ((imm >> 4) & 3)), b.AsUInt16().GetElement(4 + (imm >> 6))).AsByte();
}

internal struct ShufpsOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(a.AsUInt32().GetElement(imm & 3), a.AsUInt32().GetElement((imm >> 2) & 3), b.AsUInt32().GetElement((imm >> 4) & 3), b.AsUInt32().GetElement(imm >> 6)).AsByte();
}

internal struct ShufpdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(a.AsUInt64().GetElement(imm & 1), b.AsUInt64().GetElement((imm >> 1) & 1)).AsByte();
}

internal struct MoveOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => b;
}

internal struct MoveLow64Op : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt64().ToScalar(), a.AsUInt64().GetElement(1)).AsByte();
}

internal struct MoveLow32Op : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => a.AsUInt32().WithElement(0, b.AsUInt32().ToScalar()).AsByte();
}

internal struct MoveHigh64Op : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(a.AsUInt64().ToScalar(), b.AsUInt64().ToScalar()).AsByte();
}

internal struct MovhlpsOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt64().GetElement(1), a.AsUInt64().GetElement(1)).AsByte();
}

internal struct MovlhpsOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(a.AsUInt64().ToScalar(), b.AsUInt64().ToScalar()).AsByte();
}

internal struct ZeroExtend64Op : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.CreateScalar(b.AsUInt64().ToScalar()).AsByte();
}

internal struct MovddupOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt64().ToScalar()).AsByte();
}

internal struct MovshdupOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt32().GetElement(1), b.AsUInt32().GetElement(1), b.AsUInt32().GetElement(3), b.AsUInt32().GetElement(3)).AsByte();
}

internal struct MovsldupOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt32().GetElement(0), b.AsUInt32().GetElement(0), b.AsUInt32().GetElement(2), b.AsUInt32().GetElement(2)).AsByte();
}

internal struct PinsrwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => a.AsUInt16().WithElement(imm & 7, b.AsUInt16().ToScalar()).AsByte();
}

internal struct PshufbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Shuffle(a, b);
}

internal struct PabsbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Abs(b.AsSByte()).AsByte();
}

internal struct PabswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Abs(b.AsInt16()).AsByte();
}

internal struct PabsdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Abs(b.AsInt32()).AsByte();
}

internal struct PhaddwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalAdd(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PhadddOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalAdd(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PhaddswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalAddSaturate(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PhsubwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalSubtract(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PhsubdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalSubtract(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PhsubswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalSubtractSaturate(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PmaddubswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.MultiplyAddAdjacent(a, b.AsSByte()).AsByte();
}

internal struct PmulhrswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.MultiplyHighRoundScale(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PsignbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Sign(a.AsSByte(), b.AsSByte()).AsByte();
}

internal struct PsignwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Sign(a.AsInt16(), b.AsInt16()).AsByte();
}

internal struct PsigndOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Sign(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PalignrOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => FromUInt256(ToUInt128(b), ToUInt128(a), imm);
}

internal struct PackusdwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.PackUnsignedSaturate(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PcmpeqqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.CompareEqual(a.AsInt64(), b.AsInt64()).AsByte();
}

internal struct PmaxsbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Max(a.AsSByte(), b.AsSByte()).AsByte();
}

internal struct PmaxsdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Max(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PmaxudOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Max(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PmaxuwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Max(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PminsbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Min(a.AsSByte(), b.AsSByte()).AsByte();
}

internal struct PminsdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Min(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PminudOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Min(a.AsUInt32(), b.AsUInt32()).AsByte();
}

internal struct PminuwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Min(a.AsUInt16(), b.AsUInt16()).AsByte();
}

internal struct PmuldqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.Multiply(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PmulldOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.MultiplyLow(a.AsInt32(), b.AsInt32()).AsByte();
}

internal struct PhminposuwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.MinHorizontal(b.AsUInt16()).AsByte();
}

internal struct PmovsxbwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int16(b.AsSByte()).AsByte();
}

internal struct PmovsxbdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int32(b.AsSByte()).AsByte();
}

internal struct PmovsxbqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int64(b.AsSByte()).AsByte();
}

internal struct PmovsxwdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int32(b.AsInt16()).AsByte();
}

internal struct PmovsxwqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int64(b.AsInt16()).AsByte();
}

internal struct PmovsxdqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int64(b.AsInt32()).AsByte();
}

internal struct PmovzxbwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int16(b).AsByte();
}

internal struct PmovzxbdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int32(b).AsByte();
}

internal struct PmovzxbqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int64(b).AsByte();
}

internal struct PmovzxwdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int32(b.AsUInt16()).AsByte();
}

internal struct PmovzxwqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int64(b.AsUInt16()).AsByte();
}

internal struct PmovzxdqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse41.ConvertToVector128Int64(b.AsUInt32()).AsByte();
}

internal struct PblendwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Blend16(a, b, imm);
}

internal struct BlendpsOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Blend32(a, b, imm);
}

internal struct BlendpdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Blend64(a, b, imm);
}

internal struct PcmpgtqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse42.CompareGreaterThan(a.AsInt64(), b.AsInt64()).AsByte();
}

internal struct MpsadbwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => MultipleSumAbsoluteDifferences(a, b, imm);
}

internal struct InsertpsOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => InsertPs(a, b, imm);
}

#pragma warning restore SA1649, SA1402
