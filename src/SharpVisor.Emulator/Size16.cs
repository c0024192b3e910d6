using System.Runtime.CompilerServices;

namespace SharpVisor.Emulator;

/// <summary>The 16-bit operand size.</summary>
internal struct Size16 : IOperandSize
{
    public static int Bytes => 2;

    public static int Bits => 16;

    public static int SizeIndex => 1;

    public static ulong Mask => 0xFFFF;

    public static ulong SignBit => 1UL << 15;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignExtend(ulong value) => (ulong)(short)(ushort)value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ReadReg(X86Cpu cpu, int offset) => Unsafe.As<byte, ushort>(ref cpu.GprBytes(offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteReg(X86Cpu cpu, int offset, ulong value) => Unsafe.As<byte, ushort>(ref cpu.GprBytes(offset)) = (ushort)value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(X86Cpu cpu, ulong linear) => cpu.Read16(linear);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(X86Cpu cpu, ulong linear, ulong value) => cpu.Write16(linear, (ushort)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Load(ref byte location) => Unsafe.ReadUnaligned<ushort>(ref location);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ref byte location, ulong value) => Unsafe.WriteUnaligned(ref location, (ushort)value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong CompareExchange(ref byte location, ulong value, ulong comparand) => Interlocked.CompareExchange(ref Unsafe.As<byte, ushort>(ref location), (ushort)value, (ushort)comparand);
}
