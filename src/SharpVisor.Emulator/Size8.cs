using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>The 8-bit operand size.</summary>
internal struct Size8 : IOperandSize
{
    public static int Bytes => 1;

    public static int Bits => 8;

    public static int SizeIndex => 0;

    public static ulong Mask => 0xFF;

    public static ulong SignBit => 1UL << 7;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignExtend(ulong value) => (ulong)(sbyte)(byte)value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadReg(X86Cpu cpu, int offset) => Unsafe.As<byte, byte>(ref cpu.GprBytes(offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteReg(X86Cpu cpu, int offset, ulong value) => Unsafe.As<byte, byte>(ref cpu.GprBytes(offset)) = (byte)value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(X86Cpu cpu, ulong linear) => cpu.Read8(linear);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(X86Cpu cpu, ulong linear, ulong value) => cpu.Write8(linear, (byte)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Load(ref byte location) => Unsafe.ReadUnaligned<byte>(ref location);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref byte location, ulong value) => Unsafe.WriteUnaligned(ref location, (byte)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong CompareExchange(ref byte location, ulong value, ulong comparand) => Interlocked.CompareExchange(ref location, (byte)value, (byte)comparand);
}
