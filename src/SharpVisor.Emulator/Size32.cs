using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>The 32-bit operand size.</summary>
internal struct Size32 : IOperandSize
{
    public static int Bytes => 4;

    public static int Bits => 32;

    public static int SizeIndex => 2;

    public static ulong Mask => 0xFFFF_FFFF;

    public static ulong SignBit => 1UL << 31;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignExtend(ulong value) => (ulong)(int)(uint)value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadReg(X86Cpu cpu, int offset) => Unsafe.As<byte, uint>(ref cpu.GprBytes(offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteReg(X86Cpu cpu, int offset, ulong value) => Unsafe.As<byte, ulong>(ref cpu.GprBytes(offset)) = (uint)value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(X86Cpu cpu, ulong linear) => cpu.Read32(linear);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(X86Cpu cpu, ulong linear, ulong value) => cpu.Write32(linear, (uint)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Load(ref byte location) => Unsafe.ReadUnaligned<uint>(ref location);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref byte location, ulong value) => Unsafe.WriteUnaligned(ref location, (uint)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong CompareExchange(ref byte location, ulong value, ulong comparand) => Interlocked.CompareExchange(ref Unsafe.As<byte, uint>(ref location), (uint)value, (uint)comparand);
}
