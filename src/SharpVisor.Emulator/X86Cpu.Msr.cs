namespace SharpVisor.Emulator;

/// <summary>Model-specific registers kept by the core (RDMSR/WRMSR and the platform use these).</summary>
public sealed partial class X86Cpu
{
    public const uint MsrTsc = 0x10;
    public const uint MsrApicBase = 0x1B;
    public const uint MsrSysenterCs = 0x174;
    public const uint MsrSysenterEsp = 0x175;
    public const uint MsrSysenterEip = 0x176;
    public const uint MsrPat = 0x277;
    public const uint MsrEfer = 0xC000_0080;
    public const uint MsrStar = 0xC000_0081;
    public const uint MsrLstar = 0xC000_0082;
    public const uint MsrCstar = 0xC000_0083;
    public const uint MsrSfmask = 0xC000_0084;
    public const uint MsrFsBase = 0xC000_0100;
    public const uint MsrGsBase = 0xC000_0101;
    public const uint MsrKernelGsBase = 0xC000_0102;
    public const uint MsrTscAux = 0xC000_0103;

    /// <summary>Reads an MSR the core implements; false for unknown MSRs (RDMSR then raises #GP).</summary>
    public bool TryReadMsr(uint index, out ulong value)
    {
        switch (index)
        {
            case MsrTsc: value = ReadTsc(); return true;
            case MsrApicBase: value = _apicBase; return true;
            case MsrSysenterCs: value = _sysenterCs; return true;
            case MsrSysenterEsp: value = _sysenterEsp; return true;
            case MsrSysenterEip: value = _sysenterEip; return true;
            case MsrPat: value = _pat; return true;
            case MsrEfer: value = _efer; return true;
            case MsrStar: value = _star; return true;
            case MsrLstar: value = _lstar; return true;
            case MsrCstar: value = _cstar; return true;
            case MsrSfmask: value = _sfmask; return true;
            case MsrFsBase: value = _segs[SegFs].Base; return true;
            case MsrGsBase: value = _segs[SegGs].Base; return true;
            case MsrKernelGsBase: value = _kernelGsBase; return true;
            case MsrTscAux: value = _tscAux; return true;
            default: value = 0; return false;
        }
    }

    /// <summary>Writes an MSR the core implements; false for unknown MSRs or invalid values (WRMSR then raises #GP).</summary>
    public bool TryWriteMsr(uint index, ulong value)
    {
        switch (index)
        {
            case MsrTsc:
                _tscOffset = (long)(value - (ReadTsc() - (ulong)_tscOffset));
                return true;
            case MsrApicBase: _apicBase = value; return true;
            case MsrSysenterCs: _sysenterCs = value; return true;
            case MsrSysenterEsp: _sysenterEsp = value; return true;
            case MsrSysenterEip: _sysenterEip = value; return true;
            case MsrPat: _pat = value; return true;
            case MsrEfer:
            {
                const ulong writable = Machine.VcpuState.EferSyscall | Machine.VcpuState.EferLongModeEnable | Machine.VcpuState.EferNoExecute;
                if ((value & ~(writable | Machine.VcpuState.EferLongModeActive)) != 0)
                {
                    return false;
                }

                // LMA is read-only: it follows CR0.PG with LME.
                _efer = (value & writable) | (_efer & Machine.VcpuState.EferLongModeActive);
                UpdateMode();
                FlushTlb();
                return true;
            }

            case MsrStar: _star = value; return true;
            case MsrLstar when IsCanonical(value): _lstar = value; return true;
            case MsrCstar when IsCanonical(value): _cstar = value; return true;
            case MsrSfmask: _sfmask = value & 0xFFFF_FFFF; return true;
            case MsrFsBase when IsCanonical(value): SetSegmentBase(SegFs, value); return true;
            case MsrGsBase when IsCanonical(value): SetSegmentBase(SegGs, value); return true;
            case MsrKernelGsBase when IsCanonical(value): _kernelGsBase = value; return true;
            case MsrTscAux: _tscAux = value & 0xFFFF_FFFF; return true;
            default: return false;
        }
    }
}
