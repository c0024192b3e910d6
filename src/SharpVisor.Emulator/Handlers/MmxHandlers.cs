using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpVisor.Emulator;

/// <summary>
/// MMX instructions: Reg/Rm are MMX register numbers (or a GPR byte offset / XMM number where the
/// form says so). Every MMX instruction switches the x87 unit to MMX state (TOP = 0, all tags valid).
/// </summary>
internal static class MmxHandlers
{
    /// <summary>#UD with CR0.EM, #NM with CR0.TS, #MF for a pending x87 exception.</summary>
    private static void Check(X86Cpu cpu)
    {
        if ((cpu._cr0 & X86Cpu.Cr0Emulation) != 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        if ((cpu._cr0 & X86Cpu.Cr0TaskSwitched) != 0)
        {
            throw new CpuException(ExceptionVector.DeviceNotAvailable);
        }

        if ((cpu._fsw & X86Cpu.FswErrorSummary) != 0)
        {
            throw new CpuException(ExceptionVector.FloatingPoint);
        }
    }

    private static ulong Source(X86Cpu cpu, ref Op op) =>
        (op.Flags & OpFlags.Memory) != 0 ? cpu.Read64(cpu.Linear(ref op, 8, MemoryAccess.Read)) : cpu.ReadMmx(op.Rm);

    /// <summary>mm = op(mm, mm/m64, imm8).</summary>
    public static void Binary<TOp>(X86Cpu cpu, ref Op op)
        where TOp : struct, IVectorOp
    {
        Check(cpu);
        ulong b = Source(cpu, ref op);
        cpu.EnterMmx();
        ulong a = cpu.ReadMmx(op.Reg);
        Vector128<byte> r = TOp.Apply(Vector128.CreateScalar(a).AsByte(), Vector128.CreateScalar(b).AsByte(), (byte)op.Imm);
        cpu.WriteMmx(op.Reg, r.AsUInt64().ToScalar());
    }

    /// <summary>MOVQ mm/m64, mm (Rm or memory = destination, Reg = source).</summary>
    public static void StoreQ(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        ulong value = cpu.ReadMmx(op.Reg);

        // On Intel a store that faults has already reset TOP but not the tags (observed); on AMD it
        // faults before either, as loads do on both.
        if (!cpu._amd)
        {
            cpu._fpuTop = 0;
        }

        if ((op.Flags & OpFlags.Memory) != 0)
        {
            cpu.Write64(cpu.Linear(ref op, 8, MemoryAccess.Write), value);
        }

        cpu.EnterMmx();
        if ((op.Flags & OpFlags.Memory) == 0)
        {
            cpu.WriteMmx(op.Rm, value);
        }
    }

    /// <summary>MOVD/MOVQ mm, r/m32/64 (OpSize 4 or 8; Rm = GPR offset).</summary>
    public static void FromGpr(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        ulong value;
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            ulong linear = cpu.Linear(ref op, op.OpSize, MemoryAccess.Read);
            value = op.OpSize == 8 ? cpu.Read64(linear) : cpu.Read32(linear);
        }
        else
        {
            value = op.OpSize == 8 ? Size64.ReadReg(cpu, op.Rm) : Size32.ReadReg(cpu, op.Rm);
        }

        cpu.EnterMmx();
        cpu.WriteMmx(op.Reg, value);
    }

    /// <summary>MOVD/MOVQ r/m32/64, mm.</summary>
    public static void ToGpr(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        ulong value = cpu.ReadMmx(op.Reg);
        if (!cpu._amd)
        {
            cpu._fpuTop = 0; // Intel: before a store's fault, as for MOVQ m64, mm
        }

        if ((op.Flags & OpFlags.Memory) != 0)
        {
            ulong linear = cpu.Linear(ref op, op.OpSize, MemoryAccess.Write);
            if (op.OpSize == 8)
            {
                cpu.Write64(linear, value);
            }
            else
            {
                cpu.Write32(linear, (uint)value);
            }
        }
        else if (op.OpSize == 8)
        {
            Size64.WriteReg(cpu, op.Rm, value);
        }
        else
        {
            Size32.WriteReg(cpu, op.Rm, value);
        }

        cpu.EnterMmx();
    }

    public static void Emms(X86Cpu cpu, ref Op op)
    {
        Check(cpu);

        // Like every MMX instruction, EMMS also resets TOP (observed on hardware).
        cpu._fpuValid = 0;
        cpu._fpuTop = 0;
    }

    /// <summary>PMOVMSKB r32, mm (Reg = GPR offset, Rm = mm).</summary>
    public static void MoveMask(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        cpu.EnterMmx();
        Size64.WriteReg(cpu, op.Reg, (uint)Sse2.MoveMask(Vector128.CreateScalar(cpu.ReadMmx(op.Rm)).AsByte()) & 0xFF);
    }

    /// <summary>PEXTRW r32, mm, imm8 (Reg = GPR offset, Rm = mm).</summary>
    public static void ExtractWord(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        cpu.EnterMmx();
        Size64.WriteReg(cpu, op.Reg, (cpu.ReadMmx(op.Rm) >> (int)((op.Imm & 3) * 16)) & 0xFFFF);
    }

    /// <summary>PINSRW mm, r32/m16, imm8 (Reg = mm, Rm = GPR offset or memory).</summary>
    public static void InsertWord(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        ulong value = (op.Flags & OpFlags.Memory) != 0 ? cpu.Read16(cpu.Linear(ref op, 2, MemoryAccess.Read)) : Size64.ReadReg(cpu, op.Rm) & 0xFFFF;
        cpu.EnterMmx();
        int shift = (int)((op.Imm & 3) * 16);
        cpu.WriteMmx(op.Reg, (cpu.ReadMmx(op.Reg) & ~(0xFFFFUL << shift)) | (value << shift));
    }

    /// <summary>MASKMOVQ mm1, mm2: bytes of mm1 selected by mm2's top bits to DS:rDI.</summary>
    public static void MaskMove(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        ulong data = cpu.ReadMmx(op.Reg);
        ulong mask = cpu.ReadMmx(op.Rm);

        // A faulting MASKMOVQ has already switched to MMX (TOP = 0, all tags valid), as on hardware.
        cpu.EnterMmx();
        ulong addressMask = ulong.MaxValue >> (64 - (op.AddrSize << 3));
        ulong ea = cpu.Gpr(7) & addressMask;
        VectorHandlers.ProbeMaskedStore(cpu, ref op, ea, 8, addressMask);
        for (int i = 0; i < 8; i++)
        {
            if (((mask >> ((8 * i) + 7)) & 1) != 0)
            {
                cpu.Write8(cpu.SegmentLinear(op.Seg, (ea + (ulong)i) & addressMask, 1, MemoryAccess.Write), (byte)(data >> (8 * i)));
            }
        }
    }

    /// <summary>MOVQ2DQ xmm, mm (Reg = xmm, Rm = mm).</summary>
    public static void ToXmm(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        cpu.CheckSse();
        cpu.EnterMmx();
        cpu.Xmm(op.Reg) = Vector128.CreateScalar(cpu.ReadMmx(op.Rm)).AsByte();
    }

    /// <summary>MOVDQ2Q mm, xmm (Reg = mm, Rm = xmm).</summary>
    public static void FromXmm(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        cpu.CheckSse();
        cpu.EnterMmx();
        cpu.WriteMmx(op.Reg, cpu.Xmm(op.Rm).AsUInt64().ToScalar());
    }

    /// <summary>
    /// CVTPI2PS/CVTPI2PD xmm, mm/m64 (Aux 0 / 1): two packed dwords to floats. A memory source does
    /// not switch the FPU to MMX state.
    /// </summary>
    public static void IntegersToFloats(X86Cpu cpu, ref Op op)
    {
        bool memory = (op.Flags & OpFlags.Memory) != 0;
        if (!memory)
        {
            Check(cpu);
        }

        cpu.CheckSse();
        ulong source = Source(cpu, ref op);
        if (!memory)
        {
            cpu.EnterMmx();
        }

        FloatEnvironment env = cpu.SimdEnvironment();
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        if (op.Aux == 1)
        {
            var r = Vector128.Create(
                (ulong)SoftFloat.FromInt64(FloatFormat.Double, (int)source, ref env),
                (ulong)SoftFloat.FromInt64(FloatFormat.Double, (int)(source >> 32), ref env));
            cpu.CommitSimd(ref env);
            d = r.AsByte();
        }
        else
        {
            uint low = (uint)SoftFloat.FromInt64(FloatFormat.Single, (int)source, ref env);
            uint high = (uint)SoftFloat.FromInt64(FloatFormat.Single, (int)(source >> 32), ref env);
            cpu.CommitSimd(ref env);
            d = d.AsUInt64().WithElement(0, ((ulong)high << 32) | low).AsByte();
        }
    }

    /// <summary>CVT(T)PS2PI / CVT(T)PD2PI mm, xmm/m (Aux: bit 0 double source, bit 1 truncate).</summary>
    public static void FloatsToIntegers(X86Cpu cpu, ref Op op)
    {
        Check(cpu);
        cpu.CheckSse();
        Vector128<byte> source = cpu.SseSource(ref op);
        FloatEnvironment env = cpu.SimdEnvironment();
        int mode = (op.Aux & 2) != 0 ? RoundingMode.TowardZero : env.Rounding;
        long low;
        long high;
        if ((op.Aux & 1) != 0)
        {
            low = SoftFloat.ToInt(SoftFloat.Unpack64(source.AsUInt64().GetElement(0), env.DenormalsAreZero), 32, mode, ref env);
            high = SoftFloat.ToInt(SoftFloat.Unpack64(source.AsUInt64().GetElement(1), env.DenormalsAreZero), 32, mode, ref env);
        }
        else
        {
            low = SoftFloat.ToInt(SoftFloat.Unpack32(source.AsUInt32().GetElement(0), env.DenormalsAreZero), 32, mode, ref env);
            high = SoftFloat.ToInt(SoftFloat.Unpack32(source.AsUInt32().GetElement(1), env.DenormalsAreZero), 32, mode, ref env);
        }

        cpu.CommitSimd(ref env);
        cpu.EnterMmx();
        cpu.WriteMmx(op.Reg, ((ulong)(uint)high << 32) | (uint)low);
    }
}
