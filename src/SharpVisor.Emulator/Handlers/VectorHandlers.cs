using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpVisor.Emulator;

/// <summary>Operand plumbing for SSE instructions: register/memory sources, stores, GPR transfers.</summary>
internal static class VectorHandlers
{
    /// <summary>xmm = op(xmm, xmm/mem, imm8).</summary>
    public static void Binary<TOp>(X86Cpu cpu, ref Op op)
        where TOp : struct, IVectorOp
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        d = TOp.Apply(d, b, (byte)op.Imm);
    }

    /// <summary>Store form: xmm/mem (Rm) = op(old rm value, xmm Reg). For memory the old value is not read.</summary>
    public static void StoreToRm<TOp>(X86Cpu cpu, ref Op op)
        where TOp : struct, IVectorOp
    {
        cpu.CheckSse();
        Vector128<byte> source = cpu.Xmm(op.Reg);
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            cpu.StoreSse(ref op, source);
        }
        else
        {
            ref Vector128<byte> d = ref cpu.Xmm(op.Rm);
            d = TOp.Apply(d, source, (byte)op.Imm);
        }
    }

    /// <summary>Stores the high 64 bits of Reg (MOVHPS/MOVHPD m64, xmm).</summary>
    public static void StoreHigh64(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        cpu.Write64(cpu.Linear(ref op, 8, MemoryAccess.Write), cpu.Xmm(op.Reg).AsUInt64().GetElement(1));
    }

    /// <summary>MOVD/MOVQ xmm, r/m32/64: zero-extended into the XMM register (OpSize 4 or 8).</summary>
    public static void MoveFromGpr(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        ulong value;
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            value = op.OpSize == 8 ? cpu.Read64(cpu.Linear(ref op, 8, MemoryAccess.Read)) : cpu.Read32(cpu.Linear(ref op, 4, MemoryAccess.Read));
        }
        else
        {
            value = op.OpSize == 8 ? Size64.ReadReg(cpu, op.Rm) : Size32.ReadReg(cpu, op.Rm);
        }

        cpu.Xmm(op.Reg) = Vector128.CreateScalar(value).AsByte();
    }

    /// <summary>MOVD/MOVQ r/m32/64, xmm (Reg = xmm, Rm = GPR offset or memory).</summary>
    public static void MoveToGpr(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        ulong value = cpu.Xmm(op.Reg).AsUInt64().ToScalar();
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            if (op.OpSize == 8)
            {
                cpu.Write64(cpu.Linear(ref op, 8, MemoryAccess.Write), value);
            }
            else
            {
                cpu.Write32(cpu.Linear(ref op, 4, MemoryAccess.Write), (uint)value);
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
    }

    /// <summary>PMOVMSKB/MOVMSKPS/MOVMSKPD r32/64, xmm (Aux = 1, 4, 8 for the element size).</summary>
    public static void MoveMask(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> v = cpu.Xmm(op.Rm);
        uint mask = op.Aux switch
        {
            4 => (uint)Sse.MoveMask(v.AsSingle()),
            8 => (uint)Sse2.MoveMask(v.AsDouble()),
            _ => (uint)Sse2.MoveMask(v),
        };
        Size64.WriteReg(cpu, op.Reg, mask);
    }

    /// <summary>PEXTRB/PEXTRW/PEXTRD/PEXTRQ/EXTRACTPS to a GPR or memory (Aux = element size, Imm = index).</summary>
    public static void Extract(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> v = cpu.Xmm(op.Reg);
        int size = op.Aux;
        int count = 16 / size;
        int index = (int)op.Imm & (count - 1);
        ulong value = size switch
        {
            1 => v.GetElement(index),
            2 => v.AsUInt16().GetElement(index),
            4 => v.AsUInt32().GetElement(index),
            _ => v.AsUInt64().GetElement(index),
        };
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            ulong linear = cpu.Linear(ref op, size, MemoryAccess.Write);
            switch (size)
            {
                case 1: cpu.Write8(linear, (byte)value); break;
                case 2: cpu.Write16(linear, (ushort)value); break;
                case 4: cpu.Write32(linear, (uint)value); break;
                default: cpu.Write64(linear, value); break;
            }
        }
        else if (size == 8)
        {
            Size64.WriteReg(cpu, op.Rm, value);
        }
        else
        {
            Size32.WriteReg(cpu, op.Rm, value);
        }
    }

    /// <summary>PINSRB/PINSRW/PINSRD/PINSRQ xmm, r/m, imm (Aux = element size).</summary>
    public static void Insert(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        int size = op.Aux;
        ulong value;
        if ((op.Flags & OpFlags.Memory) != 0)
        {
            ulong linear = cpu.Linear(ref op, size, MemoryAccess.Read);
            value = size switch
            {
                1 => cpu.Read8(linear),
                2 => cpu.Read16(linear),
                4 => cpu.Read32(linear),
                _ => cpu.Read64(linear),
            };
        }
        else
        {
            value = Size64.ReadReg(cpu, op.Rm);
        }

        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        int index = (int)op.Imm & ((16 / size) - 1);
        d = size switch
        {
            1 => d.WithElement(index, (byte)value),
            2 => d.AsUInt16().WithElement(index, (ushort)value).AsByte(),
            4 => d.AsUInt32().WithElement(index, (uint)value).AsByte(),
            _ => d.AsUInt64().WithElement(index, value).AsByte(),
        };
    }

    /// <summary>
    /// MASKMOVQ/MASKMOVDQU check the whole destination before storing anything: Intel processors
    /// fault on an inaccessible destination even when the mask selects no byte (the SDM leaves that
    /// implementation-specific).
    /// </summary>
    internal static void ProbeMaskedStore(X86Cpu cpu, ref Op op, ulong ea, int size, ulong addressMask)
    {
        for (int i = 0; i < size; i++)
        {
            cpu.ProbeWrite(cpu.SegmentLinear(op.Seg, (ea + (ulong)i) & addressMask, 1, MemoryAccess.Write), 1);
        }
    }

    /// <summary>MASKMOVDQU xmm1, xmm2: bytes of xmm1 whose mask byte (xmm2) has the top bit set go to DS:rDI.</summary>
    public static void MaskMove(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> data = cpu.Xmm(op.Reg);
        Vector128<byte> mask = cpu.Xmm(op.Rm);
        ulong addressMask = ulong.MaxValue >> (64 - (op.AddrSize << 3));
        ulong ea = cpu.Gpr(7) & addressMask;
        ProbeMaskedStore(cpu, ref op, ea, 16, addressMask);
        for (int i = 0; i < 16; i++)
        {
            if ((mask.GetElement(i) & 0x80) != 0)
            {
                cpu.Write8(cpu.SegmentLinear(op.Seg, (ea + (ulong)i) & addressMask, 1, MemoryAccess.Write), data.GetElement(i));
            }
        }
    }

    /// <summary>PTEST: ZF = (a AND b) == 0, CF = (NOT a AND b) == 0; other status flags cleared.</summary>
    public static void Ptest(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        Vector128<byte> a = cpu.Xmm(op.Reg);
        ulong flags = 0;
        if ((a & b) == Vector128<byte>.Zero)
        {
            flags |= RflagsBits.Zero;
        }

        if ((~a & b) == Vector128<byte>.Zero)
        {
            flags |= RflagsBits.Carry;
        }

        cpu.SetStatusFlags(flags);
    }

    /// <summary>PBLENDVB/BLENDVPS/BLENDVPD with the implicit XMM0 mask (Aux = element size).</summary>
    public static void BlendVariable(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        Vector128<byte> b = cpu.SseSource(ref op);
        ref Vector128<byte> d = ref cpu.Xmm(op.Reg);
        Vector128<byte> mask = cpu.Xmm(0);
        d = op.Aux switch
        {
            4 => Sse41.BlendVariable(d.AsSingle(), b.AsSingle(), mask.AsSingle()).AsByte(),
            8 => Sse41.BlendVariable(d.AsDouble(), b.AsDouble(), mask.AsDouble()).AsByte(),
            _ => Sse41.BlendVariable(d, b, mask),
        };
    }

    public static void Ldmxcsr(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        uint value = cpu.Read32(cpu.Linear(ref op, 4, MemoryAccess.Read));
        if ((value & ~cpu._mxcsrMask) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        cpu._mxcsr = value;
    }

    public static void Stmxcsr(X86Cpu cpu, ref Op op)
    {
        cpu.CheckSse();
        cpu.Write32(cpu.Linear(ref op, 4, MemoryAccess.Write), cpu._mxcsr);
    }
}
