using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpVisor.Emulator;

// MMX-specific forms of operations whose 64-bit semantics are not the low half of the 128-bit
// ones (high unpacks, packs, horizontal ops, byte shuffles and aligns). Operands hold the MMX
// values in their low 64 bits; the result is read from the low 64 bits.
#pragma warning disable SA1649, SA1402
internal static class MmxPairs
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Pair(Vector128<byte> a, Vector128<byte> b) =>
        Vector128.Create(a.AsUInt64().ToScalar(), b.AsUInt64().ToScalar()).AsByte();
}

internal struct MmxPunpckhbwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.CreateScalar(Sse2.UnpackLow(a, b).AsUInt64().GetElement(1)).AsByte();
}

internal struct MmxPunpckhwdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.CreateScalar(Sse2.UnpackLow(a.AsUInt16(), b.AsUInt16()).AsUInt64().GetElement(1)).AsByte();
}

internal struct MmxPunpckhdqOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.CreateScalar(Sse2.UnpackLow(a.AsUInt32(), b.AsUInt32()).AsUInt64().GetElement(1)).AsByte();
}

internal struct MmxPacksswbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.PackSignedSaturate(MmxPairs.Pair(a, b).AsInt16(), MmxPairs.Pair(a, b).AsInt16()).AsByte();
}

internal struct MmxPackssdwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.PackSignedSaturate(MmxPairs.Pair(a, b).AsInt32(), MmxPairs.Pair(a, b).AsInt32()).AsByte();
}

internal struct MmxPackuswbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Sse2.PackUnsignedSaturate(MmxPairs.Pair(a, b).AsInt16(), MmxPairs.Pair(a, b).AsInt16());
}

internal struct MmxPhaddwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalAdd(MmxPairs.Pair(a, b).AsInt16(), MmxPairs.Pair(a, b).AsInt16()).AsByte();
}

internal struct MmxPhadddOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalAdd(MmxPairs.Pair(a, b).AsInt32(), MmxPairs.Pair(a, b).AsInt32()).AsByte();
}

internal struct MmxPhaddswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalAddSaturate(MmxPairs.Pair(a, b).AsInt16(), MmxPairs.Pair(a, b).AsInt16()).AsByte();
}

internal struct MmxPhsubwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalSubtract(MmxPairs.Pair(a, b).AsInt16(), MmxPairs.Pair(a, b).AsInt16()).AsByte();
}

internal struct MmxPhsubdOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalSubtract(MmxPairs.Pair(a, b).AsInt32(), MmxPairs.Pair(a, b).AsInt32()).AsByte();
}

internal struct MmxPhsubswOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.HorizontalSubtractSaturate(MmxPairs.Pair(a, b).AsInt16(), MmxPairs.Pair(a, b).AsInt16()).AsByte();
}

internal struct MmxPshufbOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Ssse3.Shuffle(a, Sse2.And(b, Vector128.Create((byte)0x87)));
}

internal struct MmxPalignrOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.CreateScalar(imm >= 16 ? 0UL : (ulong)((((UInt128)a.AsUInt64().ToScalar() << 64) | b.AsUInt64().ToScalar()) >> (imm * 8))).AsByte();
}

internal struct MmxPshufwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => Vector128.Create(b.AsUInt16().GetElement(imm & 3), b.AsUInt16().GetElement((imm >> 2) & 3), b.AsUInt16().GetElement((imm >> 4) & 3), b.AsUInt16().GetElement(imm >> 6), (ushort)0, (ushort)0, (ushort)0, (ushort)0).AsByte();
}

internal struct MmxPinsrwOp : IVectorOp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Apply(Vector128<byte> a, Vector128<byte> b, byte imm) => a.AsUInt16().WithElement(imm & 3, b.AsUInt16().ToScalar()).AsByte();
}

#pragma warning restore SA1649, SA1402
