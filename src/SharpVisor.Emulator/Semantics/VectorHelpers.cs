using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpVisor.Emulator;

/// <summary>Helpers for vector operations that have no single host intrinsic with a run-time immediate.</summary>
internal static class VectorHelpers
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<ushort> Count(byte imm) => Vector128.CreateScalar((ulong)imm).AsUInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static UInt128 ToUInt128(Vector128<byte> v) => Unsafe.As<Vector128<byte>, UInt128>(ref v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> FromUInt128(UInt128 v) => Unsafe.As<UInt128, Vector128<byte>>(ref v);

    /// <summary>PALIGNR: bytes imm..imm+15 of the 32-byte value high:low (zeros past the end).</summary>
    public static Vector128<byte> FromUInt256(UInt128 low, UInt128 high, byte imm)
    {
        if (imm >= 32)
        {
            return Vector128<byte>.Zero;
        }

        if (imm >= 16)
        {
            return FromUInt128(high >> ((imm - 16) * 8));
        }

        if (imm == 0)
        {
            return FromUInt128(low);
        }

        return FromUInt128((low >> (imm * 8)) | (high << ((16 - imm) * 8)));
    }

    public static Vector128<byte> Blend16(Vector128<byte> a, Vector128<byte> b, byte imm)
    {
        Vector128<ushort> x = a.AsUInt16();
        Vector128<ushort> y = b.AsUInt16();
        for (int i = 0; i < 8; i++)
        {
            if ((imm & (1 << i)) != 0)
            {
                x = x.WithElement(i, y.GetElement(i));
            }
        }

        return x.AsByte();
    }

    public static Vector128<byte> Blend32(Vector128<byte> a, Vector128<byte> b, byte imm)
    {
        Vector128<uint> x = a.AsUInt32();
        Vector128<uint> y = b.AsUInt32();
        for (int i = 0; i < 4; i++)
        {
            if ((imm & (1 << i)) != 0)
            {
                x = x.WithElement(i, y.GetElement(i));
            }
        }

        return x.AsByte();
    }

    public static Vector128<byte> Blend64(Vector128<byte> a, Vector128<byte> b, byte imm)
    {
        Vector128<ulong> x = a.AsUInt64();
        Vector128<ulong> y = b.AsUInt64();
        for (int i = 0; i < 2; i++)
        {
            if ((imm & (1 << i)) != 0)
            {
                x = x.WithElement(i, y.GetElement(i));
            }
        }

        return x.AsByte();
    }

    /// <summary>MPSADBW: eight sums of absolute differences of 4-byte groups (offsets from imm bits 2 and 1:0).</summary>
    public static Vector128<byte> MultipleSumAbsoluteDifferences(Vector128<byte> a, Vector128<byte> b, byte imm)
    {
        int aOffset = ((imm >> 2) & 1) * 4;
        int bOffset = (imm & 3) * 4;
        Vector128<ushort> r = default;
        for (int i = 0; i < 8; i++)
        {
            int sum = 0;
            for (int j = 0; j < 4; j++)
            {
                sum += Math.Abs(a.GetElement(aOffset + i + j) - b.GetElement(bOffset + j));
            }

            r = r.WithElement(i, (ushort)sum);
        }

        return r.AsByte();
    }

    /// <summary>INSERTPS: copy dword imm[7:6] of b (register form; memory form already in lane 0) to lane imm[5:4], then zero lanes in imm[3:0].</summary>
    public static Vector128<byte> InsertPs(Vector128<byte> a, Vector128<byte> b, byte imm)
    {
        Vector128<uint> x = a.AsUInt32().WithElement((imm >> 4) & 3, b.AsUInt32().GetElement(imm >> 6));
        for (int i = 0; i < 4; i++)
        {
            if ((imm & (1 << i)) != 0)
            {
                x = x.WithElement(i, 0u);
            }
        }

        return x.AsByte();
    }
}
