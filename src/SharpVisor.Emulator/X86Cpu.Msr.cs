using SharpVisor.Machine;

namespace SharpVisor.Emulator;

/// <summary>
/// Model-specific registers kept by the core, RDMSR/WRMSR (unknown MSRs go to the platform),
/// and the fast system calls that MSRs configure: SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS.
/// </summary>
/// <remarks>
/// Beyond the architectural MSRs, the core answers the ones Linux touches at boot on an Intel
/// family-6 CPU the way KVM does for a guest without the matching features: IA32_MISC_ENABLE
/// (fast strings on, no BTS/PEBS; those two read-only, the rest kept as written), the microcode revision (writes ignored), IA32_FEAT_CTL
/// (writable, no VMX), MISC_FEATURES_ENABLES and DEBUGCTL (zero), PLATFORM_INFO (zero) and the
/// MTRR capability and default type (no MTRRs are advertised, so Linux leaves them alone).
/// IA32_ARCH_CAPABILITIES tells Linux which CPU bugs the emulated CPU does not have.
/// </remarks>
public sealed partial class X86Cpu
{
    public const uint MsrTsc = 0x10;
    public const uint MsrApicBase = 0x1B;
    public const uint MsrFeatureControl = 0x3A;
    public const uint MsrMicrocodeRevision = 0x8B;
    public const uint MsrPlatformInfo = 0xCE;
    public const uint MsrMtrrCapabilities = 0xFE;
    public const uint MsrArchCapabilities = 0x10A;
    public const uint MsrMiscFeaturesEnables = 0x140;
    public const uint MsrSysenterCs = 0x174;
    public const uint MsrSysenterEsp = 0x175;
    public const uint MsrSysenterEip = 0x176;
    public const uint MsrMiscEnable = 0x1A0;
    public const uint MsrDebugControl = 0x1D9;
    public const uint MsrPat = 0x277;
    public const uint MsrMtrrDefaultType = 0x2FF;
    public const uint MsrEfer = 0xC000_0080;
    public const uint MsrStar = 0xC000_0081;
    public const uint MsrLstar = 0xC000_0082;
    public const uint MsrCstar = 0xC000_0083;
    public const uint MsrSfmask = 0xC000_0084;
    public const uint MsrFsBase = 0xC000_0100;
    public const uint MsrGsBase = 0xC000_0101;
    public const uint MsrKernelGsBase = 0xC000_0102;
    public const uint MsrTscAux = 0xC000_0103;

    /// <summary>IA32_MISC_ENABLE at reset: fast strings enabled, BTS and PEBS unavailable (as KVM and QEMU report).</summary>
    public const ulong MiscEnableDefault = (1UL << 0) | (1UL << 11) | (1UL << 12);

    /// <summary>
    /// IA32_ARCH_CAPABILITIES: RDCL_NO, SKIP_L1DFL_VMENTRY, SSB_NO, MDS_NO, PSCHANGE_MC_NO, TAA_NO,
    /// SBDR_SSDP_NO, FBSDP_NO, PSDP_NO, ITS_NO — an emulator leaks nothing through speculation, so
    /// Linux needs none of those mitigations (page-table isolation among them; without ITS_NO a
    /// return thunk on every kernel RET, as BTC_NO/SRSO_NO spare the AMD profile's guest).
    /// </summary>
    public const ulong ArchCapabilitiesValue = (1UL << 0) | (1UL << 3) | (1UL << 4) | (1UL << 5) | (1UL << 6) | (1UL << 8)
        | (1UL << 13) | (1UL << 14) | (1UL << 15) | (1UL << 62);

    /// <summary>IA32_MISC_ENABLE bits 11 and 12 (BTS, PEBS unavailable): a write that changes them is #GP.</summary>
    private const ulong MiscEnableReadOnly = (1UL << 11) | (1UL << 12);

    /// <summary>IA32_MISC_ENABLE bit 7 (performance monitoring available): writes are ignored.</summary>
    private const ulong MiscEnableEmon = 1UL << 7;

    private const ulong DefaultPat = 0x0007_0406_0007_0406;
    private const ulong DefaultApicBase = 0xFEE0_0900;

    private ulong _miscEnable;

    // Read-only to the guest; a CPU template may set it (kept across RESET, like a model constant).
    private ulong _archCapabilities = ArchCapabilitiesValue;
    private ulong _featureControl;
    private ulong _mtrrDefaultType;

    private void ResetModelSpecificRegisters()
    {
        _kernelGsBase = _star = _lstar = _cstar = _sfmask = _tscAux = 0;
        _sysenterCs = _sysenterEsp = _sysenterEip = 0;
        _pat = DefaultPat;
        _apicBase = DefaultApicBase;
        _tscOffset = 0;
        _miscEnable = MiscEnableDefault;
        _featureControl = 0;
        _mtrrDefaultType = 0;
    }

    /// <summary>Reads an MSR the core implements; false for unknown MSRs (RDMSR then asks the platform, then raises #GP).</summary>
    public bool TryReadMsr(uint index, out ulong value)
    {
        switch (index)
        {
            case MsrTsc: value = ReadTsc(); return true;
            case MsrApicBase: value = _apicBase; return true;
            case MsrFeatureControl: value = _featureControl; return true;
            case MsrMicrocodeRevision: value = 0x1_0000_0000; return true;
            case MsrPlatformInfo: value = 0; return true;
            case MsrMtrrCapabilities: value = 0; return true;
            case MsrArchCapabilities when Model.Has(CpuFeature.ArchCapabilities): value = _archCapabilities; return true;
            case MsrMiscFeaturesEnables: value = 0; return true;
            case MsrSysenterCs: value = _sysenterCs; return true;
            case MsrSysenterEsp: value = _sysenterEsp; return true;
            case MsrSysenterEip: value = _sysenterEip; return true;
            case MsrMiscEnable: value = _miscEnable; return true;
            case MsrDebugControl: value = 0; return true;
            case MsrPat: value = _pat; return true;
            case MsrMtrrDefaultType: value = _mtrrDefaultType; return true;
            case MsrEfer: value = _efer; return true;
            case MsrStar: value = _star; return true;
            case MsrLstar: value = _lstar; return true;
            case MsrCstar: value = _cstar; return true;
            case MsrSfmask: value = _sfmask; return true;
            case MsrFsBase: value = _segs[SegFs].Base; return true;
            case MsrGsBase: value = _segs[SegGs].Base; return true;
            case MsrKernelGsBase: value = _kernelGsBase; return true;
            case MsrTscAux when Model.Has(CpuFeature.Rdtscp): value = _tscAux; return true;
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
            case MsrFeatureControl:
                // Lock bit only: no VMX or SMX to enable.
                if ((_featureControl & 1) != 0 || (value & ~1UL) != 0)
                {
                    return false;
                }

                _featureControl = value;
                return true;
            case MsrMicrocodeRevision: return true; // Linux writes 0 before reading the revision
            case MsrMiscFeaturesEnables: return value == 0;
            case MsrSysenterCs: _sysenterCs = value & 0xFFFF; return true;
            case MsrSysenterEsp when IsCanonical(value): _sysenterEsp = value; return true;
            case MsrSysenterEip when IsCanonical(value): _sysenterEip = value; return true;
            case MsrMiscEnable:
                // As KVM: BTS/PEBS-unavailable are read-only (#GP if changed), performance
                // monitoring available ignores writes, every other bit is kept as written, so a
                // guest may write back what it read with its own bits changed.
                if (((value ^ _miscEnable) & MiscEnableReadOnly) != 0)
                {
                    return false;
                }

                _miscEnable = (value & ~MiscEnableEmon) | (_miscEnable & MiscEnableEmon);
                return true;
            case MsrDebugControl: return value == 0;
            case MsrPat when IsValidPat(value): _pat = value; return true;
            case MsrMtrrDefaultType when (value & ~0xCFFUL) == 0 && IsValidMemoryType(value & 0xFF): _mtrrDefaultType = value; return true;
            case MsrEfer: return WriteEfer(value);
            case MsrStar: _star = value; return true;
            case MsrLstar when IsCanonical(value): _lstar = value; return true;
            case MsrCstar when IsCanonical(value): _cstar = value; return true;
            case MsrSfmask: _sfmask = value & 0xFFFF_FFFF; return true;
            case MsrFsBase when IsCanonical(value): SetSegmentBase(SegFs, value); return true;
            case MsrGsBase when IsCanonical(value): SetSegmentBase(SegGs, value); return true;
            case MsrKernelGsBase when IsCanonical(value): _kernelGsBase = value; return true;
            case MsrTscAux when Model.Has(CpuFeature.Rdtscp) && (value >> 32) == 0: _tscAux = value; return true;
            default: return false;
        }
    }

    private static bool IsValidMemoryType(ulong type) => type is 0 or 1 or 4 or 5 or 6;

    private static bool IsValidPat(ulong value)
    {
        for (int i = 0; i < 8; i++)
        {
            ulong type = (value >> (i * 8)) & 0xFF;
            if (type is not (0 or 1 or 4 or 5 or 6 or 7))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>EFER: SCE, LME and NXE as advertised; LME may not change while paging is on; LMA is the CPU's.</summary>
    private bool WriteEfer(ulong value)
    {
        ulong writable = (Model.Has(CpuFeature.Syscall) ? VcpuState.EferSyscall : 0)
            | (Model.Has(CpuFeature.LongMode) ? VcpuState.EferLongModeEnable : 0)
            | (Model.Has(CpuFeature.NoExecute) ? VcpuState.EferNoExecute : 0);
        if ((value & ~(writable | VcpuState.EferLongModeActive)) != 0)
        {
            return false;
        }

        bool paging = (_cr0 & VcpuState.Cr0Paging) != 0;
        if (paging && ((value ^ _efer) & VcpuState.EferLongModeEnable) != 0)
        {
            return false;
        }

        ulong efer = (value & writable) | (_efer & VcpuState.EferLongModeActive);
        if (!_mmu.OnEferWrite(efer))
        {
            return false;
        }

        bool nxChanged = ((efer ^ _efer) & VcpuState.EferNoExecute) != 0;
        _efer = efer;
        UpdateMode();
        if (nxChanged)
        {
            FlushJumpCache();
            EndBlockAfterThis();
        }

        return true;
    }

    /// <summary>RDMSR: ECX names the MSR; EDX:EAX gets it. The platform answers what the core does not (x2APIC, kvmclock).</summary>
    internal void ExecuteRdmsr()
    {
        RequireCpl0();
        uint index = (uint)_regs[1];
        if (!TryReadMsrOrPlatform(index, out ulong value))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        _regs[0] = (uint)value;
        _regs[2] = value >> 32;
    }

    /// <summary>WRMSR: ECX names the MSR, EDX:EAX is the value.</summary>
    internal void ExecuteWrmsr()
    {
        RequireCpl0();
        uint index = (uint)_regs[1];
        ulong value = ((_regs[2] & 0xFFFF_FFFF) << 32) | (_regs[0] & 0xFFFF_FFFF);
        if (!CheckMsrPins(index, value))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        if (!TryWriteMsrOrPlatform(index, value))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    /// <summary>An MSR as RDMSR sees it: the core's, else the platform's (x2APIC, kvmclock); the APIC base is the platform's.</summary>
    internal bool TryReadMsrOrPlatform(uint index, out ulong value) => index == MsrApicBase && Platform is not null
        ? Platform.TryReadMsr(this, index, out value)
        : TryReadMsr(index, out value) || (Platform?.TryReadMsr(this, index, out value) ?? false);

    /// <summary>An MSR write as WRMSR makes it (pins aside): false where RDMSR's owner refuses it.</summary>
    internal bool TryWriteMsrOrPlatform(uint index, ulong value) => index == MsrApicBase && Platform is not null
        ? Platform.TryWriteMsr(this, index, value)
        : TryWriteMsr(index, value) || (!IsCoreMsr(index) && (Platform?.TryWriteMsr(this, index, value) ?? false));

    /// <summary>
    /// Sets an MSR from the host (a CPU template), as KVM_SET_MSRS does: also the read-only
    /// IA32_ARCH_CAPABILITIES, whose value the guest only reads.
    /// </summary>
    public bool TrySetMsrFromHost(uint index, ulong value)
    {
        if (index == MsrArchCapabilities && Model.Has(CpuFeature.ArchCapabilities))
        {
            _archCapabilities = value;
            return true;
        }

        return TryWriteMsrOrPlatform(index, value);
    }

    /// <summary>Reads an MSR as the guest's RDMSR would (core or platform), for the host.</summary>
    public bool TryGetMsrFromHost(uint index, out ulong value) => TryReadMsrOrPlatform(index, out value);

    /// <summary>Whether the core owns an MSR (a rejected write to it is #GP, not a question for the platform).</summary>
    private bool IsCoreMsr(uint index) => TryReadMsr(index, out _);

    // ---- SYSCALL / SYSRET -------------------------------------------------------------------

    /// <summary>SYSCALL (64-bit mode, EFER.SCE): RCX = return RIP, R11 = RFLAGS, CS/SS from STAR[47:32], RIP = LSTAR.</summary>
    internal void ExecuteSyscall(ulong returnRip)
    {
        if (Platform is { } platform && platform.TryParavirtualSyscall(this, returnRip))
        {
            _exitBlock = ExitJump;
            return;
        }

        if (!_is64 || (_efer & VcpuState.EferSyscall) == 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        ulong flags = GetRflags();
        _regs[1] = returnRip;
        _regs[11] = flags & ~RflagsBits.Resume;
        ushort selector = (ushort)(_star >> 32);
        _segs[SegCs] = FlatSegment((ushort)(selector & 0xFFFC), 0xB, dpl: 0, longMode: true);
        _segs[SegSs] = FlatSegment((ushort)(selector + 8), 0x3, dpl: 0, longMode: false);
        SetRflags(flags & ~(_sfmask | RflagsBits.Resume));
        _rip = _lstar;
        UpdateMode();
        _exitBlock = ExitJump;
    }

    /// <summary>SYSRET: back to CPL 3 at RCX with RFLAGS = R11; CS/SS from STAR[63:48] (+16 for 64-bit code).</summary>
    internal void ExecuteSysret(bool to64)
    {
        if (!_is64 || (_efer & VcpuState.EferSyscall) == 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        RequireCpl0();
        ulong rip = to64 ? _regs[1] : (uint)_regs[1];
        if (!IsCanonical(rip))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0); // Intel faults here, still at CPL 0
        }

        ushort selector = (ushort)(_star >> 48);
        _segs[SegCs] = to64
            ? FlatSegment((ushort)((selector + 16) | 3), 0xB, dpl: 3, longMode: true)
            : FlatSegment((ushort)(selector | 3), 0xB, dpl: 3, longMode: false);
        _segs[SegSs] = FlatSegment((ushort)((selector + 8) | 3), 0x3, dpl: 3, longMode: false);
        SetRflags((_regs[11] & 0x3C_7FD7) | RflagsBits.Reserved1);
        _rip = rip;
        UpdateMode();
        _exitBlock = ExitJump;
    }

    // ---- SYSENTER / SYSEXIT -----------------------------------------------------------------

    /// <summary>SYSENTER: CPL 0 at SYSENTER_EIP/ESP with flat segments from SYSENTER_CS (64-bit code in IA-32e mode).</summary>
    internal void ExecuteSysenter()
    {
        if (_mode == CpuMode.Real || (_sysenterCs & 0xFFFC) == 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        bool longMode = LongModeActive;
        ushort selector = (ushort)_sysenterCs;
        ulong flags = GetRflags();
        SetRflags(flags & ~(RflagsBits.Virtual8086 | RflagsBits.Interrupt | RflagsBits.Resume));
        _segs[SegCs] = FlatSegment((ushort)(selector & 0xFFFC), 0xB, dpl: 0, longMode: longMode);
        _segs[SegSs] = FlatSegment((ushort)((selector & 0xFFFC) + 8), 0x3, dpl: 0, longMode: false);
        _rip = longMode ? _sysenterEip : (uint)_sysenterEip;
        _regs[Rsp] = longMode ? _sysenterEsp : (uint)_sysenterEsp;
        UpdateMode();
        _exitBlock = ExitJump;
    }

    /// <summary>SYSEXIT: CPL 3 at EDX/RDX with the stack at ECX/RCX; REX.W returns to 64-bit code.</summary>
    internal void ExecuteSysexit(bool to64)
    {
        if (_mode == CpuMode.Real || (_sysenterCs & 0xFFFC) == 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        RequireCpl0();
        ulong rip = to64 ? _regs[2] : (uint)_regs[2];
        ulong rsp = to64 ? _regs[1] : (uint)_regs[1];
        if (to64 && (!IsCanonical(rip) || !IsCanonical(rsp)))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ushort selector = (ushort)_sysenterCs;
        _segs[SegCs] = FlatSegment((ushort)((selector + (to64 ? 32 : 16)) | 3), 0xB, dpl: 3, longMode: to64);
        _segs[SegSs] = FlatSegment((ushort)((selector + (to64 ? 40 : 24)) | 3), 0x3, dpl: 3, longMode: false);
        _rip = rip;
        _regs[Rsp] = rsp;
        UpdateMode();
        _exitBlock = ExitJump;
    }

    /// <summary>SWAPGS (64-bit mode, CPL 0): exchanges GS.base with IA32_KERNEL_GS_BASE.</summary>
    internal void ExecuteSwapgs()
    {
        if (!_is64)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        RequireCpl0();
        ulong kernel = _kernelGsBase;
        _kernelGsBase = _segs[SegGs].Base;
        SetSegmentBase(SegGs, kernel);
    }

    /// <summary>
    /// Runs a VMCALL/VMMCALL through <paramref name="handler"/> (KVM's ABI: any CPL and mode, the
    /// ABI decides, as KVM does): the registers go in, what the handler changed comes back.
    /// False: the handler does not take it (the instruction is then #UD).
    /// </summary>
    internal bool TryRunHypercall(Machine.IHypercallHandler handler, int vcpuId)
    {
        var registers = new Machine.HypercallRegisters
        {
            Rax = _regs[0],
            Rcx = _regs[1],
            Rdx = _regs[2],
            Rbx = _regs[3],
            Rsi = _regs[6],
            Rdi = _regs[7],
            R8 = _regs[8],
            R9 = _regs[9],
            R10 = _regs[10],
            Cpl = _cpl,
            LongMode = _is64,
        };
        if (!handler.Handle(vcpuId, ref registers))
        {
            return false;
        }

        _regs[0] = registers.Rax;
        _regs[1] = registers.Rcx;
        _regs[2] = registers.Rdx;
        _regs[3] = registers.Rbx;
        _regs[6] = registers.Rsi;
        _regs[7] = registers.Rdi;
        _regs[8] = registers.R8;
        _regs[9] = registers.R9;
        _regs[10] = registers.R10;
        return true;
    }

    /// <summary>The flat 4 GiB segment SYSCALL/SYSENTER load: code (type 0xB) or data (type 3), present, accessed.</summary>
    private static SegmentCache FlatSegment(ushort selector, int type, int dpl, bool longMode) => new()
    {
        Selector = selector,
        Base = 0,
        Limit = 0xFFFF_FFFF,
        Attributes = (uint)type | SegmentCache.AttrS | (uint)(dpl << 5) | SegmentCache.AttrPresent | SegmentCache.AttrGranularity
            | (longMode ? SegmentCache.AttrLong : SegmentCache.AttrDefaultBig),
    };

    // ---- CPUID ----------------------------------------------------------------------

    /// <summary>CPUID: the model's answer, adjusted by the platform (hypervisor leaves, APIC id, x2APIC).</summary>
    internal void ExecuteCpuid()
    {
        uint leaf = (uint)_regs[0];
        uint subleaf = (uint)_regs[1];
        (uint a, uint b, uint c, uint d) = Model.Query(leaf, subleaf, (_cr4 & Cr4OsXsave) != 0);
        Platform?.AdjustCpuid(this, leaf, subleaf, ref a, ref b, ref c, ref d);
        _regs[0] = a;
        _regs[3] = b;
        _regs[1] = c;
        _regs[2] = d;
    }
}
