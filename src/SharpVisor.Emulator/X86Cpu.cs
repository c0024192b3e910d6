using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator;

/// <summary>
/// A software x86-64 CPU: architectural state, an MMU (<see cref="Mmu.IMmu"/>: shadow or nested
/// paging, with the software TLB the memory fast path reads), a cache of decoded blocks keyed
/// by physical address and the interpreter that runs them. One instance is one logical
/// processor and is driven by one thread.
/// </summary>
public sealed unsafe partial class X86Cpu
{
    // General registers by register-file slot (RAX=0 ... R15=15), see RegisterFile.
    internal RegisterFile _regs;
    internal XmmFile _xmm;
    internal ulong _rip;
    internal uint _mxcsr = 0x1F80;

    internal readonly SegmentCache[] _segs = new SegmentCache[6];
    internal SegmentCache _ldtr;
    internal SegmentCache _tr;
    internal ulong _gdtBase;
    internal ushort _gdtLimit;
    internal ulong _idtBase;
    internal ushort _idtLimit;

    internal ulong _cr0 = 0x6000_0010;
    internal ulong _cr2;
    internal ulong _cr3;
    internal ulong _cr4;
    internal ulong _cr8;
    internal ulong _efer;
    internal ulong _xcr0 = 1;
    internal readonly ulong[] _dr = new ulong[8];

    // Model-specific registers that live in the core.
    internal ulong _kernelGsBase;
    internal ulong _star;
    internal ulong _lstar;
    internal ulong _cstar;
    internal ulong _sfmask;
    internal ulong _tscAux;
    internal ulong _sysenterCs;
    internal ulong _sysenterEsp;
    internal ulong _sysenterEip;
    internal ulong _pat = 0x0007_0406_0007_0406;
    internal ulong _apicBase = 0xFEE0_0900;
    internal long _tscOffset;

    // Derived mode state, refreshed by UpdateMode().
    internal CpuMode _mode = CpuMode.Real;
    internal bool _is64;
    internal int _cpl;
    internal ulong _ipMask = 0xFFFF;
    internal ulong _stackMask = 0xFFFF;

    /// <summary>Segment bases used in address generation: FS/GS only in 64-bit mode, all six otherwise.</summary>
    internal SegmentBases _segBase;

    private readonly PhysicalMemory _physical;

    /// <summary>The model is AMD's: the vendor-specific behaviours (docs/emulator.md, "Vendor profiles") follow the APM.</summary>
    internal readonly bool _amd;

    /// <summary>The model's MXCSR_MASK (<see cref="CpuModel.MxcsrMask"/>).</summary>
    internal readonly uint _mxcsrMask;

    /// <param name="memory">Guest-physical memory: RAM and the MMIO handler.</param>
    /// <param name="model">What CPUID reports (default: <see cref="CpuModel.Default"/>).</param>
    /// <param name="mmu">
    /// The MMU (one per vCPU). Default: a <see cref="ShadowMmu"/> over the RAM whose options match
    /// the model. It must agree with the model on MAXPHYADDR and 1 GiB pages.
    /// </param>
    public X86Cpu(PhysicalMemory memory, CpuModel? model = null, IMmu? mmu = null)
    {
        _physical = memory;
        Model = model ?? CpuModel.Default;
        _amd = Model.Vendor == CpuVendor.Amd;
        _mxcsrMask = Model.MxcsrMask;
        mmu ??= new ShadowMmu(memory.Ram, new MmuOptions
        {
            PhysicalAddressBits = Model.PhysicalAddressBits,
            Supports1GiBPages = Model.Has(CpuFeature.Page1Gb),
        });
        if (mmu.Options.PhysicalAddressBits != Model.PhysicalAddressBits)
        {
            throw new ArgumentException($"the MMU's MAXPHYADDR ({mmu.Options.PhysicalAddressBits}) differs from the CPU model's ({Model.PhysicalAddressBits})", nameof(mmu));
        }

        if (Model.Has(CpuFeature.Page1Gb) && !mmu.Options.Supports1GiBPages)
        {
            throw new ArgumentException("the CPU model advertises 1 GiB pages but the MMU does not support them", nameof(mmu));
        }

        AttachMmu(mmu);
        InitializeX87();
        Reset();
    }

    /// <summary>The CPUID model this processor reports.</summary>
    public CpuModel Model { get; }

    public PhysicalMemory Memory => _physical;

    /// <summary>The MMU: paging under the guest's control registers, its TLB and counters.</summary>
    public IMmu Mmu => _mmu;

    /// <summary>Port I/O for IN/OUT; without one, reads return all-ones and writes are dropped.</summary>
    public SharpVisor.Machine.PortIoBus? PortIo { get; set; }

    /// <summary>Receives one line per distinct unimplemented instruction (bytes and address) before #UD is raised.</summary>
    public Action<string>? Diagnostics { get; set; }

    /// <summary>Guest instructions retired since creation (a REP string instruction counts once per resumption).</summary>
    public long InstructionsExecuted => _instructions;

    public CpuMode Mode => _mode;

    public int CurrentPrivilegeLevel => _cpl;

    public ulong Rip
    {
        get => _rip;
        set => _rip = value;
    }

    public ulong Rflags
    {
        get => GetRflags();
        set => SetRflags(value);
    }

    public uint Mxcsr
    {
        get => _mxcsr;
        set => _mxcsr = value & _mxcsrMask;
    }

    /// <summary>MXCSR.MM (bit 17): AMD's misaligned SSE mode, writable only when the model has it.</summary>
    internal const uint MxcsrMisalignedMask = 1u << 17;

    public ulong Cr0 => _cr0;

    public ulong Cr2
    {
        get => _cr2;
        set => _cr2 = value;
    }

    public ulong Cr3 => _cr3;

    public ulong Cr4 => _cr4;

    public ulong Efer => _efer;

    /// <summary>The task-priority register as MOV CR8 sees it (the platform's local APIC when there is one).</summary>
    public ulong Cr8 => Platform is { } platform ? platform.ReadCr8(this) : _cr8;

    /// <summary>XCR0 (the XSAVE feature mask); only the components in <see cref="CpuModel.SupportedXcr0"/>, x87 always.</summary>
    public ulong Xcr0
    {
        get => _xcr0;
        set
        {
            if ((value & 1) == 0 || (value & ~CpuModel.SupportedXcr0) != 0)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "unsupported XCR0 value");
            }

            _xcr0 = value;
        }
    }

    /// <summary>A general register by number (RAX=0, RCX=1, ... R15=15).</summary>
    public ulong GetRegister(int index) => _regs[CheckGpr(index)];

    public void SetRegister(int index, ulong value) => _regs[CheckGpr(index)] = value;

    public UInt128 GetXmm(int index)
    {
        Vector128<ulong> v = Xmm(CheckXmm(index)).AsUInt64();
        return new UInt128(v.GetElement(1), v.GetElement(0));
    }

    public void SetXmm(int index, UInt128 value) =>
        Xmm(CheckXmm(index)) = Vector128.Create((ulong)value, (ulong)(value >> 64)).AsByte();

    public ulong GetSegmentBase(int segment) => _segs[segment].Base;

    public ushort GetSegmentSelector(int segment) => _segs[segment].Selector;

    /// <summary>Sets the FS or GS base (as WRMSR FS_BASE/GS_BASE does).</summary>
    public void SetSegmentBase(int segment, ulong value)
    {
        _segs[segment].Base = value;
        RefreshSegmentBases();
    }

    /// <summary>The processor's state at RESET: real mode, CS:IP = F000:FFF0 with the BIOS alias base.</summary>
    public void Reset() => ResetArchitecturalState(init: false);

    /// <summary>
    /// RESET (<paramref name="init"/> false) or INIT: real mode at F000:FFF0, caches of the MMU dropped.
    /// INIT keeps the x87/SSE state, XCR0 and the MSRs, as the processor does.
    /// </summary>
    private void ResetArchitecturalState(bool init)
    {
        for (int i = 0; i < RegisterFile.Slots; i++)
        {
            _regs[i] = 0;
        }

        _regs[2] = 0x600; // EDX: family/model/stepping at reset
        _rip = 0xFFF0;
        SetRflags(RflagsBits.Reserved1);
        for (int i = 0; i < 6; i++)
        {
            _segs[i] = SegmentCache.RealMode(0, code: i == SegCs);
        }

        _segs[SegCs].Selector = 0xF000;
        _segs[SegCs].Base = 0xFFFF_0000;
        _ldtr = new SegmentCache { Limit = 0xFFFF, Attributes = 0x82 | SegmentCache.AttrPresent };
        _tr = new SegmentCache { Limit = 0xFFFF, Attributes = 0x8B | SegmentCache.AttrPresent };
        _gdtBase = _idtBase = 0;
        _gdtLimit = _idtLimit = 0xFFFF;
        _cr0 = 0x6000_0010;
        _cr2 = _cr3 = _cr4 = _cr8 = _efer = 0;
        Array.Clear(_dr);
        _dr[6] = 0xFFFF_0FF0;
        _dr[7] = 0x400;
        if (!init)
        {
            _xcr0 = 1;
            _xinuse = 0;
            _mxcsr = 0x1F80;
            for (int i = 0; i < 16; i++)
            {
                Xmm(i) = default;
            }

            ResetX87();
            ResetModelSpecificRegisters();
        }

        ResetEventState();
        UpdateMode();
        LoadMmuControlRegisters();
        RefreshDebugState();
    }

    /// <summary>Gives the MMU the control registers (reset, state load) and drops every cached translation.</summary>
    private void LoadMmuControlRegisters()
    {
        if (!_mmu.LoadControlRegisters(_cr0, _cr3, _cr4, _efer))
        {
            throw new ArgumentException($"CR3 0x{_cr3:x} points at invalid PAE page-directory-pointer entries");
        }

        FlushJumpCache();
    }

    internal const int SegEs = 0;
    internal const int SegCs = 1;
    internal const int SegSs = 2;
    internal const int SegDs = 3;
    internal const int SegFs = 4;
    internal const int SegGs = 5;

    /// <summary>Recomputes the mode, CPL, IP/stack masks and effective segment bases after CR0/EFER/CS/SS/RFLAGS.VM change.</summary>
    internal void UpdateMode()
    {
        bool longActive = (_efer & Machine.VcpuState.EferLongModeActive) != 0;
        ref SegmentCache cs = ref _segs[SegCs];
        if ((_cr0 & Machine.VcpuState.Cr0ProtectionEnable) == 0)
        {
            _mode = CpuMode.Real;
        }
        else if ((_flags & RflagsBits.Virtual8086) != 0 && !longActive)
        {
            _mode = CpuMode.Virtual8086;
        }
        else if (longActive && cs.Long)
        {
            _mode = CpuMode.Long64;
        }
        else if (longActive)
        {
            _mode = cs.DefaultBig ? CpuMode.Compatibility32 : CpuMode.Compatibility16;
        }
        else
        {
            _mode = cs.DefaultBig ? CpuMode.Protected32 : CpuMode.Protected16;
        }

        _is64 = _mode == CpuMode.Long64;
        _cpl = _mode switch
        {
            CpuMode.Real => 0,
            CpuMode.Virtual8086 => 3,
            _ => _segs[SegSs].Dpl,
        };
        _ipMask = _mode switch
        {
            CpuMode.Long64 => ulong.MaxValue,
            CpuMode.Protected32 or CpuMode.Compatibility32 => 0xFFFF_FFFF,
            _ => 0xFFFF,
        };
        _stackMask = _is64 ? ulong.MaxValue : _segs[SegSs].DefaultBig ? 0xFFFF_FFFF : 0xFFFF;
        RefreshSegmentBases();
        RefreshFpuAvailability();
        RefreshTlbContext();
        _jumpCache = _cpl == 3 ? _userJumpCache : _supervisorJumpCache;
        NoteUserModeEntry();
    }

    internal void RefreshSegmentBases()
    {
        for (int i = 0; i < 6; i++)
        {
            _segBase[i] = _is64 && i < SegFs ? 0 : _segs[i].Base;
        }

        _segBase[6] = 0;
    }

    /// <summary>Bitness the decoder uses: 16, 32 or 64.</summary>
    internal int Bitness => _mode switch
    {
        CpuMode.Long64 => 64,
        CpuMode.Protected32 or CpuMode.Compatibility32 => 32,
        _ => 16,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref ulong Gpr(int slot) => ref Unsafe.Add(ref _regs[0], slot);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref byte GprBytes(int byteOffset) => ref Unsafe.AddByteOffset(ref Unsafe.As<ulong, byte>(ref _regs[0]), (nint)byteOffset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref Vector128<byte> Xmm(int index) => ref Unsafe.As<XmmSlot, Vector128<byte>>(ref Unsafe.Add(ref _xmm[0], index));

    private static int CheckGpr(int index) =>
        (uint)index < 16 ? index : throw new ArgumentOutOfRangeException(nameof(index), "general registers are numbered 0-15");

    private static int CheckXmm(int index) =>
        (uint)index < 16 ? index : throw new ArgumentOutOfRangeException(nameof(index), "XMM registers are numbered 0-15");
}

/// <summary>Control-register bits and time.</summary>
public sealed partial class X86Cpu
{
    internal const ulong Cr0Monitor = 1UL << 1;
    internal const ulong Cr0Emulation = 1UL << 2;
    internal const ulong Cr0TaskSwitched = 1UL << 3;
    internal const ulong Cr0AlignmentMask = 1UL << 18;
    internal const ulong Cr4TimeStampDisable = 1UL << 2;
    internal const ulong Cr4Umip = 1UL << 11;
    internal const ulong Cr4OsFxsr = 1UL << 9;
    internal const ulong Cr4OsXmmExceptions = 1UL << 10;
    internal const ulong Cr4FsGsBase = 1UL << 16;
    internal const ulong Cr4OsXsave = 1UL << 18;

    /// <summary>
    /// The time-stamp counter: the platform's (one clock for every vCPU) or, without one, host
    /// monotonic time at the model's TSC rate; plus this CPU's offset (IA32_TSC writes).
    /// </summary>
    internal ulong ReadTsc()
    {
        if (Platform is { } platform)
        {
            return platform.ReadTsc() + (ulong)_tscOffset;
        }

        long ticks = System.Diagnostics.Stopwatch.GetTimestamp();
        UInt128 scaled = (UInt128)(ulong)ticks * Model.TscFrequency / (ulong)System.Diagnostics.Stopwatch.Frequency;
        return (ulong)scaled + (ulong)_tscOffset;
    }
}
