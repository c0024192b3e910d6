using System.Diagnostics;
using System.Security.Cryptography;

namespace SharpVisor.Emulator;

/// <summary>Flag instructions, sign extensions, CPUID, RDTSC, RDRAND, HLT, INT, UD, XLAT.</summary>
internal static class MiscHandlers
{
    public static void Clc(X86Cpu cpu, ref Op op) => cpu.UpdateStatusFlags(RflagsBits.Carry, 0);

    public static void Stc(X86Cpu cpu, ref Op op) => cpu.UpdateStatusFlags(RflagsBits.Carry, RflagsBits.Carry);

    public static void Cmc(X86Cpu cpu, ref Op op) =>
        cpu.UpdateStatusFlags(RflagsBits.Carry, cpu.CarryFlag ? 0 : RflagsBits.Carry);

    public static void Cld(X86Cpu cpu, ref Op op) => cpu._flags &= ~RflagsBits.Direction;

    public static void Std(X86Cpu cpu, ref Op op) => cpu._flags |= RflagsBits.Direction;

    private static void CheckIopl(X86Cpu cpu)
    {
        if (cpu._mode != CpuMode.Real && cpu._cpl > cpu.Iopl)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    public static void Cli(X86Cpu cpu, ref Op op)
    {
        CheckIopl(cpu);
        cpu._flags &= ~RflagsBits.Interrupt;
    }

    public static void Sti(X86Cpu cpu, ref Op op)
    {
        CheckIopl(cpu);
        if ((cpu._flags & RflagsBits.Interrupt) == 0)
        {
            // Interrupts wait until the instruction after STI has completed.
            cpu.BeginInterruptShadow();
        }

        cpu._flags |= RflagsBits.Interrupt;
        cpu._exitBlock = X86Cpu.ExitAfter;
    }

    public static void Lahf(X86Cpu cpu, ref Op op)
    {
        ulong f = cpu.GetRflags();
        cpu.GprBytes(1) = (byte)((f & 0xD5) | 2);
    }

    public static void Sahf(X86Cpu cpu, ref Op op)
    {
        ulong ah = cpu.GprBytes(1);
        cpu.UpdateStatusFlags(RflagsBits.Sign | RflagsBits.Zero | RflagsBits.Adjust | RflagsBits.Parity | RflagsBits.Carry, ah);
    }

    /// <summary>CBW/CWDE/CDQE: sign-extend the accumulator's lower half (OpSize = destination size).</summary>
    public static void SignExtendAccumulator<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong v = cpu.Gpr(0);
        ulong r = TSize.Bits switch
        {
            16 => (ulong)(sbyte)v,
            32 => (ulong)(short)v,
            _ => (ulong)(int)v,
        };
        TSize.WriteReg(cpu, 0, r);
    }

    /// <summary>CWD/CDQ/CQO: fill rDX with the accumulator's sign.</summary>
    public static void SignFill<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        ulong sign = (TSize.ReadReg(cpu, 0) & TSize.SignBit) != 0 ? ulong.MaxValue : 0;
        TSize.WriteReg(cpu, 2 * 8, sign);
    }

    public static void Xlat(X86Cpu cpu, ref Op op)
    {
        ulong mask = ulong.MaxValue >> (64 - (op.AddrSize << 3));
        ulong ea = (cpu.Gpr(3) + cpu.GprBytes(0)) & mask;
        cpu.GprBytes(0) = cpu.Read8(cpu.SegmentLinear(op.Seg, ea, 1, MemoryAccess.Read));
    }

    public static void Cpuid(X86Cpu cpu, ref Op op) => cpu.ExecuteCpuid();

    public static void Rdtsc(X86Cpu cpu, ref Op op)
    {
        if ((cpu._cr4 & X86Cpu.Cr4TimeStampDisable) != 0 && cpu._cpl != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong tsc = cpu.ReadTsc();
        cpu.Gpr(0) = (uint)tsc;
        cpu.Gpr(2) = tsc >> 32;
    }

    public static void Rdtscp(X86Cpu cpu, ref Op op)
    {
        Rdtsc(cpu, ref op);
        cpu.Gpr(1) = (uint)cpu._tscAux;
    }

    /// <summary>RDRAND/RDSEED: always succeed (CF=1) with host randomness.</summary>
    public static void Rdrand<TSize>(X86Cpu cpu, ref Op op)
        where TSize : struct, IOperandSize
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        TSize.WriteReg(cpu, op.Reg, BitConverter.ToUInt64(bytes));
        cpu.SetStatusFlags(RflagsBits.Carry);
    }

    public static void Hlt(X86Cpu cpu, ref Op op)
    {
        if (cpu._cpl != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        cpu._halted = true;
        cpu._exitBlock = X86Cpu.ExitAfter;
    }

    /// <summary>
    /// VMCALL/VMMCALL: the platform's hypervisor interface, or #UD without one. The block ends
    /// after it, so an upcall the hypercall raised is taken at once.
    /// </summary>
    public static void Hypercall(X86Cpu cpu, ref Op op)
    {
        if (cpu.Platform is null || !cpu.Platform.TryHypercall(cpu))
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        cpu._exitBlock = X86Cpu.ExitAfter;
    }

    public static void Undefined(X86Cpu cpu, ref Op op) => throw new CpuException(ExceptionVector.InvalidOpcode);

    /// <summary>An instruction longer than 15 bytes.</summary>
    public static void TooLong(X86Cpu cpu, ref Op op) => throw new CpuException(ExceptionVector.GeneralProtection, 0);

    public static void Unimplemented(X86Cpu cpu, ref Op op) => cpu.RaiseUnimplemented(ref op);

    /// <summary>INT n, INT3, INT1 (Imm = vector): a trap the platform delivers through the IDT.</summary>
    public static void SoftwareInterrupt(X86Cpu cpu, ref Op op) => throw CpuException.SoftwareInterrupt((byte)op.Imm, op.Length);

    public static void Into(X86Cpu cpu, ref Op op)
    {
        if (cpu.OverflowFlag)
        {
            throw CpuException.SoftwareInterrupt(4, op.Length);
        }
    }
}
