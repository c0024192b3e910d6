namespace SharpVisor.Emulator;

/// <summary>
/// Instructions that exist only outside 64-bit mode: BCD adjustments (DAA, DAS, AAA, AAS, AAM, AAD),
/// SALC, BOUND and ARPL. Flags the SDM leaves undefined are set from the result (SF/ZF/PF) or
/// cleared (OF), a fixed choice.
/// </summary>
internal static class LegacyHandlers
{
    private static ref byte Al(X86Cpu cpu) => ref cpu.GprBytes(0);

    private static ref byte Ah(X86Cpu cpu) => ref cpu.GprBytes(1);

    private static ulong ResultFlags(byte al) => X86Cpu.ResultFlags((ulong)(long)(sbyte)al);

    public static void Daa(X86Cpu cpu, ref Op op)
    {
        ulong flags = cpu.GetRflags();
        byte oldAl = Al(cpu);
        bool oldCf = (flags & RflagsBits.Carry) != 0;
        bool af = false;
        if ((oldAl & 0xF) > 9 || (flags & RflagsBits.Adjust) != 0)
        {
            Al(cpu) = (byte)(oldAl + 6);
            af = true;
        }

        // The carry out of the first step implies old AL > 0x99, so CF is decided here alone.
        bool cf = oldAl > 0x99 || oldCf;
        if (cf)
        {
            Al(cpu) += 0x60;
        }

        cpu.SetStatusFlags(ResultFlags(Al(cpu)) | (cf ? RflagsBits.Carry : 0) | (af ? RflagsBits.Adjust : 0));
    }

    public static void Das(X86Cpu cpu, ref Op op)
    {
        ulong flags = cpu.GetRflags();
        byte oldAl = Al(cpu);
        bool oldCf = (flags & RflagsBits.Carry) != 0;
        bool cf = false;
        bool af = false;
        if ((oldAl & 0xF) > 9 || (flags & RflagsBits.Adjust) != 0)
        {
            cf = oldCf || oldAl < 6;
            Al(cpu) = (byte)(oldAl - 6);
            af = true;
        }

        if (oldAl > 0x99 || oldCf)
        {
            Al(cpu) -= 0x60;
            cf = true;
        }

        cpu.SetStatusFlags(ResultFlags(Al(cpu)) | (cf ? RflagsBits.Carry : 0) | (af ? RflagsBits.Adjust : 0));
    }

    /// <summary>AAA (Aux 0) and AAS (Aux 1): unpacked BCD adjust after addition/subtraction.</summary>
    public static void AsciiAdjust(X86Cpu cpu, ref Op op)
    {
        ulong flags = cpu.GetRflags();
        bool adjust = (Al(cpu) & 0xF) > 9 || (flags & RflagsBits.Adjust) != 0;
        if (adjust)
        {
            ref ushort ax = ref System.Runtime.CompilerServices.Unsafe.As<byte, ushort>(ref Al(cpu));
            ax = op.Aux == 0 ? (ushort)(ax + 0x106) : (ushort)(ax - 0x106);
        }

        Al(cpu) &= 0xF;
        cpu.SetStatusFlags(ResultFlags(Al(cpu)) | (adjust ? RflagsBits.Carry | RflagsBits.Adjust : 0));
    }

    /// <summary>AAM imm8: AH = AL / imm8, AL = AL % imm8 (#DE for a zero base).</summary>
    public static void Aam(X86Cpu cpu, ref Op op)
    {
        byte radix = (byte)op.Imm;
        if (radix == 0)
        {
            throw new CpuException(ExceptionVector.DivideError);
        }

        byte al = Al(cpu);
        Ah(cpu) = (byte)(al / radix);
        Al(cpu) = (byte)(al % radix);
        cpu.SetStatusFlags(ResultFlags(Al(cpu)));
    }

    /// <summary>AAD imm8: AL = AL + AH * imm8, AH = 0.</summary>
    public static void Aad(X86Cpu cpu, ref Op op)
    {
        Al(cpu) = (byte)(Al(cpu) + (Ah(cpu) * (byte)op.Imm));
        Ah(cpu) = 0;
        cpu.SetStatusFlags(ResultFlags(Al(cpu)));
    }

    /// <summary>SALC (undocumented D6): AL = CF ? 0xFF : 0.</summary>
    public static void Salc(X86Cpu cpu, ref Op op) => Al(cpu) = cpu.CarryFlag ? (byte)0xFF : (byte)0;

    /// <summary>BOUND r, m: #BR unless lower ≤ r ≤ upper (signed; Aux = operand size in bytes).</summary>
    public static void Bound(X86Cpu cpu, ref Op op)
    {
        int size = op.Aux;
        ulong linear = cpu.Linear(ref op, size * 2, MemoryAccess.Read);
        long index;
        long lower;
        long upper;
        if (size == 2)
        {
            uint bounds = cpu.Read32(linear);
            index = (short)cpu.Gpr(op.Reg / 8);
            lower = (short)bounds;
            upper = (short)(bounds >> 16);
        }
        else
        {
            ulong bounds = cpu.Read64(linear);
            index = (int)cpu.Gpr(op.Reg / 8);
            lower = (int)bounds;
            upper = (int)(bounds >> 32);
        }

        if (index < lower || index > upper)
        {
            throw new CpuException(ExceptionVector.BoundRange);
        }
    }

    /// <summary>ARPL r/m16, r16: raises the destination selector's RPL to the source's (ZF = 1 when it changed).</summary>
    public static void Arpl(X86Cpu cpu, ref Op op)
    {
        if (cpu._mode is CpuMode.Real or CpuMode.Virtual8086)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        ushort source = (ushort)cpu.Gpr(op.Reg / 8);
        bool memory = (op.Flags & OpFlags.Memory) != 0;
        ulong linear = memory ? cpu.Linear(ref op, 2, MemoryAccess.Write) : 0;
        ushort destination = memory ? cpu.Read16(linear) : (ushort)cpu.Gpr(op.Rm / 8);
        bool raise = (destination & 3) < (source & 3);
        if (raise)
        {
            destination = (ushort)((destination & ~3) | (source & 3));
            if (memory)
            {
                cpu.Write16(linear, destination);
            }
            else
            {
                Size16.WriteReg(cpu, op.Rm, destination);
            }
        }

        cpu.UpdateStatusFlags(RflagsBits.Zero, raise ? RflagsBits.Zero : 0);
    }
}
