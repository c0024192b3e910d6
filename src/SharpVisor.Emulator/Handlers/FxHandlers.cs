namespace SharpVisor.Emulator;

/// <summary>FXSAVE/FXRSTOR (Aux = 1 for the 64-bit REX.W forms).</summary>
internal static class FxHandlers
{
    private static ulong AlignedLinear(X86Cpu cpu, ref Op op, MemoryAccess access)
    {
        if (cpu._fpuUnavailable)
        {
            throw new CpuException(ExceptionVector.DeviceNotAvailable);
        }

        if (((cpu.EffectiveAddress(ref op) + cpu._segBase[op.Seg]) & 15) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        return cpu.Linear(ref op, 512, access);
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
    }
}
