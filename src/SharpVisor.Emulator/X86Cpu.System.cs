namespace SharpVisor.Emulator;

/// <summary>Privilege checks shared by system instructions.</summary>
public sealed partial class X86Cpu
{
    /// <summary>#GP(0) unless at CPL 0 (real mode counts as CPL 0).</summary>
    internal void RequireCpl0()
    {
        if (_cpl != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    /// <summary>IN/OUT/INS/OUTS permission: CPL ≤ IOPL, else the TSS I/O bitmap (not modelled: #GP).</summary>
    internal void CheckIoPermission(ushort port, int size)
    {
        if (_mode == CpuMode.Real)
        {
            return;
        }

        if (_mode == CpuMode.Virtual8086 || _cpl > Iopl)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }
}
