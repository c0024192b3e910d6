using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>The 64-bit operand size.</summary>
internal struct Size64 : IOperandSize
{
    public static int Bytes => 8;

    public static int Bits => 64;

    public static int SizeIndex => 3;

    public static ulong Mask => ulong.MaxValue;

    public static ulong SignBit => 1UL << 63;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignExtend(ulong value) => value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadReg(X86Cpu cpu, int offset) => Unsafe.As<byte, ulong>(ref cpu.GprBytes(offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteReg(X86Cpu cpu, int offset, ulong value) => Unsafe.As<byte, ulong>(ref cpu.GprBytes(offset)) = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(X86Cpu cpu, ulong linear) => cpu.Read64(linear);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(X86Cpu cpu, ulong linear, ulong value) => cpu.Write64(linear, (ulong)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Load(ref byte location) => Unsafe.ReadUnaligned<ulong>(ref location);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref byte location, ulong value) => Unsafe.WriteUnaligned(ref location, (ulong)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong CompareExchange(ref byte location, ulong value, ulong comparand) => Interlocked.CompareExchange(ref Unsafe.As<byte, ulong>(ref location), (ulong)value, (ulong)comparand);
}
