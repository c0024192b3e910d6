using System.Buffers.Binary;

namespace SharpVisor.Emulator;

/// <summary>FXSAVE/FXRSTOR and XSAVE/XRSTOR/XGETBV/XSETBV (Aux = 1 for the 64-bit REX.W forms).</summary>
internal static class FxHandlers
{
    private const int XsaveHeader = 512;
    private const ulong X87Component = 1;
    private const ulong SseComponent = 2;

    private static ulong AlignedLinear(X86Cpu cpu, ref Op op, MemoryAccess access)
    {
        if (cpu._fpuUnavailable)
        {
            throw new CpuException(ExceptionVector.DeviceNotAvailable);
        }

        // Unlike MOVDQA or CMPXCHG16B, the canonical/segment checks (#SS for a stack-based operand)
        // come before the alignment check (as on hardware).
        ulong linear = cpu.Linear(ref op, 512, access);
        if ((linear & 15) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        return linear;
    }

    public static void Fxsave(X86Cpu cpu, ref Op op)
    {
        ulong linear = AlignedLinear(cpu, ref op, MemoryAccess.Write);
        cpu.ProbeArea(linear, 512, MemoryAccess.Write);
        Span<byte> image = stackalloc byte[512];
        cpu.ReadBytes(linear, image);
        cpu.FxsaveImage(image, op.Aux == 1);
        cpu.WriteBytes(linear, image);
    }

    public static void Fxrstor(X86Cpu cpu, ref Op op)
    {
        ulong linear = AlignedLinear(cpu, ref op, MemoryAccess.Read);
        cpu.ProbeArea(linear, 512, MemoryAccess.Read);
        Span<byte> image = stackalloc byte[512];
        cpu.ReadBytes(linear, image);
        if (!cpu.FxrstorImage(image, op.Aux == 1))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        cpu._xinuse = X86Cpu.XinuseX87 | X86Cpu.XinuseSse;
        cpu.RestoredSseInUse();
    }

    private static ulong XsaveLinear(X86Cpu cpu, ref Op op, MemoryAccess access)
    {
        if ((cpu._cr4 & X86Cpu.Cr4OsXsave) == 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        if ((cpu._cr0 & X86Cpu.Cr0TaskSwitched) != 0)
        {
            throw new CpuException(ExceptionVector.DeviceNotAvailable);
        }

        // AMD checks the 64-byte alignment first (a misaligned non-canonical stack address is #GP,
        // not #SS); Intel, as for FXSAVE on both, the canonical/segment checks first.
        if (cpu._amd && ((cpu.EffectiveAddress(ref op) + cpu._segBase[op.Seg]) & 63) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong linear = cpu.Linear(ref op, (int)CpuModel.XsaveAreaSize, access);
        if ((linear & 63) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        return linear;
    }

    /// <summary>The requested-feature bitmap: XCR0 AND EDX:EAX.</summary>
    private static ulong RequestedFeatures(X86Cpu cpu) => cpu._xcr0 & (((cpu.Gpr(2) & 0xFFFF_FFFF) << 32) | (cpu.Gpr(0) & 0xFFFF_FFFF));

    /// <summary>XSAVE in the standard format: XSTATE_BV[i] = XINUSE[i] for the requested components; the rest of the header is left as it was.</summary>
    public static void Xsave(X86Cpu cpu, ref Op op)
    {
        ulong linear = XsaveLinear(cpu, ref op, MemoryAccess.Write);
        int size = (int)CpuModel.XsaveAreaSize;
        cpu.ProbeArea(linear, size, MemoryAccess.Write);
        Span<byte> image = stackalloc byte[size];
        cpu.ReadBytes(linear, image);
        ulong rfbm = RequestedFeatures(cpu);
        if ((rfbm & X87Component) != 0)
        {
            cpu.SaveX87Image(image, op.Aux == 1);
        }

        if ((rfbm & SseComponent) != 0)
        {
            cpu.SaveMxcsrImage(image);
            cpu.SaveXmmImage(image);
        }

        ulong xstate = BinaryPrimitives.ReadUInt64LittleEndian(image[XsaveHeader..]);
        BinaryPrimitives.WriteUInt64LittleEndian(image[XsaveHeader..], (xstate & ~rfbm) | (rfbm & (ulong)cpu.XsaveInUse()));
        cpu.WriteBytes(linear, image);
    }

    /// <summary>XRSTOR from the standard format; components absent from XSTATE_BV are initialized.</summary>
    public static void Xrstor(X86Cpu cpu, ref Op op)
    {
        ulong linear = XsaveLinear(cpu, ref op, MemoryAccess.Read);
        int size = (int)CpuModel.XsaveAreaSize;
        cpu.ProbeArea(linear, size, MemoryAccess.Read);
        Span<byte> image = stackalloc byte[size];
        cpu.ReadBytes(linear, image);
        ulong rfbm = RequestedFeatures(cpu);
        ulong xstate = BinaryPrimitives.ReadUInt64LittleEndian(image[XsaveHeader..]);
        ulong xcomp = BinaryPrimitives.ReadUInt64LittleEndian(image[(XsaveHeader + 8)..]);
        ulong reserved = BinaryPrimitives.ReadUInt64LittleEndian(image[(XsaveHeader + 16)..]);

        // The compacted format (XCOMP_BV[63]) is not supported (XSAVEC is not advertised).
        if ((xstate & ~cpu._xcr0) != 0 || xcomp != 0 || reserved != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        // AMD checks MXCSR before it loads anything; Intel has already loaded the x87 component (below).
        if (cpu._amd && (rfbm & SseComponent) != 0 && (BinaryPrimitives.ReadUInt32LittleEndian(image[24..]) & ~cpu._mxcsrMask) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        if ((rfbm & X87Component) != 0)
        {
            if ((xstate & X87Component) != 0)
            {
                cpu.RestoreX87Image(image, op.Aux == 1);
            }
            else
            {
                cpu.ResetX87();
            }
        }

        if ((rfbm & SseComponent) != 0)
        {
            // Intel has already loaded the x87 component when it finds a reserved MXCSR bit.
            uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(image[24..]);
            if ((mxcsr & ~cpu._mxcsrMask) != 0)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, 0);
            }

            cpu._mxcsr = mxcsr;
            if ((xstate & SseComponent) != 0)
            {
                cpu.RestoreXmmImage(image);
            }
            else
            {
                for (int i = 0; i < 16; i++)
                {
                    cpu.Xmm(i) = default;
                }
            }
        }

        cpu._xinuse = (int)(((ulong)cpu._xinuse & ~rfbm) | (rfbm & xstate));
        if ((rfbm & xstate & SseComponent) != 0)
        {
            cpu.RestoredSseInUse();
        }
    }

    public static void Xgetbv(X86Cpu cpu, ref Op op)
    {
        if ((cpu._cr4 & X86Cpu.Cr4OsXsave) == 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        if ((uint)cpu.Gpr(1) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        cpu.Gpr(0) = (uint)cpu._xcr0;
        cpu.Gpr(2) = cpu._xcr0 >> 32;
    }

    public static void Xsetbv(X86Cpu cpu, ref Op op)
    {
        if ((cpu._cr4 & X86Cpu.Cr4OsXsave) == 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        ulong value = ((cpu.Gpr(2) & 0xFFFF_FFFF) << 32) | (cpu.Gpr(0) & 0xFFFF_FFFF);
        if (cpu._cpl != 0 || (uint)cpu.Gpr(1) != 0 || (value & X87Component) == 0 || (value & ~CpuModel.SupportedXcr0) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        cpu._xcr0 = value;
    }
}
