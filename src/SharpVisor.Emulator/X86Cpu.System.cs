using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;

namespace SharpVisor.Emulator;

/// <summary>
/// Privileged state: control and debug registers, descriptor-table registers, LDTR and TR,
/// I/O permission, and the privilege checks system instructions share.
/// </summary>
public sealed partial class X86Cpu
{
    private const ulong Cr0NotWriteThrough = 1UL << 29;
    private const ulong Cr0CacheDisable = 1UL << 30;

    /// <summary>CR0 bits that exist; writes to others in 31:0 are ignored, in 63:32 they are #GP.</summary>
    private const ulong Cr0Defined = VcpuState.Cr0ProtectionEnable | Cr0Monitor | Cr0Emulation | Cr0TaskSwitched
        | VcpuState.Cr0ExtensionType | VcpuState.Cr0NumericError | VcpuState.Cr0WriteProtect | Cr0AlignmentMask
        | Cr0NotWriteThrough | Cr0CacheDisable | VcpuState.Cr0Paging;

    private const ulong Cr4DebuggingExtensions = 1UL << 3;
    private const ulong Cr4MachineCheck = 1UL << 6;
    private const ulong Cr4PerformanceCounters = 1UL << 8;

    /// <summary>#GP(0) unless at CPL 0 (real mode counts as CPL 0).</summary>
    internal void RequireCpl0()
    {
        if (_cpl != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    /// <summary>#UD in real and virtual-8086 mode (LLDT, LTR, LAR, LSL, VERR, VERW, ...).</summary>
    internal void RequireProtectedMode()
    {
        if (_mode is CpuMode.Real or CpuMode.Virtual8086)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }
    }

    /// <summary>
    /// IN/OUT/INS/OUTS permission: real mode always, CPL ≤ IOPL, else the bits of the TSS I/O
    /// permission bitmap for every port accessed must be clear (#GP(0) otherwise).
    /// </summary>
    internal void CheckIoPermission(ushort port, int size)
    {
        if (_mode == CpuMode.Real || (_mode != CpuMode.Virtual8086 && _cpl <= Iopl))
        {
            return;
        }

        // Only a 32/64-bit TSS has a bitmap.
        if (_tr.Unusable || (_tr.Type & 0x9) != 0x9 || _tr.Limit < 0x67)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong mapBase = ReadSystem(SystemLinear(_tr.Base + 0x66), 2);
        ulong offset = mapBase + (ulong)(port >> 3);
        if (offset + 1 > _tr.Limit)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong bits = ReadSystem(SystemLinear(_tr.Base + offset), 2);
        ulong mask = ((1UL << size) - 1) << (port & 7);
        if ((bits & mask) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    // ---- Control registers -------------------------------------------------------------------

    /// <summary>MOV from CRn (CPL 0 checked by the caller).</summary>
    internal ulong ReadControlRegister(int n) => n switch
    {
        0 => _cr0,
        2 => _cr2,
        3 => _cr3,
        4 => _cr4,
        8 => Cr8 & 0xF,
        _ => throw new CpuException(ExceptionVector.InvalidOpcode),
    };

    /// <summary>MOV to CRn with the architectural checks; the MMU follows CR0/CR3/CR4 changes.</summary>
    internal void WriteControlRegister(int n, ulong value)
    {
        switch (n)
        {
            case 0: WriteCr0(value); break;
            case 2: _cr2 = value; break;
            case 3: WriteCr3(value); break;
            case 4: WriteCr4(value); break;
            case 8:
                if ((value & ~0xFUL) != 0)
                {
                    throw new CpuException(ExceptionVector.GeneralProtection, 0);
                }

                _cr8 = value;
                Platform?.WriteCr8(this, value);
                break;
            default:
                throw new CpuException(ExceptionVector.InvalidOpcode);
        }
    }

    private void WriteCr0(ulong value)
    {
        if ((value >> 32) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        value = (value & Cr0Defined) | VcpuState.Cr0ExtensionType;
        CheckControlRegisterPins(0, value);
        bool paging = (value & VcpuState.Cr0Paging) != 0;
        bool wasPaging = (_cr0 & VcpuState.Cr0Paging) != 0;
        if ((paging && (value & VcpuState.Cr0ProtectionEnable) == 0)
            || ((value & Cr0NotWriteThrough) != 0 && (value & Cr0CacheDisable) == 0))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong efer = _efer;
        if (paging && !wasPaging && (_efer & VcpuState.EferLongModeEnable) != 0)
        {
            // Activating long mode: PAE paging and a non-64-bit code segment are required.
            if ((_cr4 & VcpuState.Cr4Pae) == 0 || _segs[SegCs].Long)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, 0);
            }

            efer |= VcpuState.EferLongModeActive;
        }
        else if (!paging && wasPaging && LongModeActive)
        {
            if (_is64)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, 0);
            }

            efer &= ~VcpuState.EferLongModeActive;
        }

        if (!_mmu.OnCr0Write(value) || (efer != _efer && !_mmu.OnEferWrite(efer)))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong changed = _cr0 ^ value;
        _cr0 = value;
        _efer = efer;
        UpdateMode();
        if ((changed & (VcpuState.Cr0Paging | VcpuState.Cr0ProtectionEnable | VcpuState.Cr0WriteProtect)) != 0)
        {
            FlushJumpCache();
        }

        EndBlockAfterThis();
    }

    private void WriteCr3(ulong value)
    {
        if (LongModeActive)
        {
            // Bit 63 is the PCID no-flush hint; PCIDs are not supported, so it is reserved like the bits above MAXPHYADDR.
            ulong reserved = ~((1UL << Model.PhysicalAddressBits) - 1);
            if ((value & reserved) != 0)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, 0);
            }
        }
        else
        {
            value &= 0xFFFF_FFFF;
        }

        if (!_mmu.OnCr3Write(value))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        _cr3 = value;
        FlushNonGlobalLookups();
        EndBlockAfterThis();
    }

    /// <summary>CR4 bits this CPU implements (others are #GP): no VME/PVI, LA57, VMX, PCID or PKE; SMEP, SMAP and UMIP when the model offers them.</summary>
    internal ulong SupportedCr4 =>
        Cr4TimeStampDisable | Cr4DebuggingExtensions | PageWalker.Cr4Pse | VcpuState.Cr4Pae | Cr4MachineCheck
        | VcpuState.Cr4Pge | Cr4PerformanceCounters | Cr4OsFxsr | Cr4OsXmmExceptions
        | (Model.Has(CpuFeature.Umip) ? Cr4Umip : 0)
        | (Model.Has(CpuFeature.Fsgsbase) ? Cr4FsGsBase : 0)
        | (Model.Has(CpuFeature.Xsave) ? Cr4OsXsave : 0)
        | (Model.Has(CpuFeature.Smep) ? PageWalker.Cr4Smep : 0)
        | (Model.Has(CpuFeature.Smap) ? PageWalker.Cr4Smap : 0);

    /// <summary>
    /// UMIP: SGDT, SIDT, SLDT, SMSW and STR are #GP(0) outside CPL 0 once CR4.UMIP is set, so user
    /// space cannot learn where the kernel keeps its descriptor tables.
    /// </summary>
    internal void CheckUserModeInstructionPrevention()
    {
        if (_cpl > 0 && (_cr4 & Cr4Umip) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    /// <summary>
    /// STAC and CLAC: set or clear RFLAGS.AC, which lets supervisor code reach user pages under
    /// SMAP. #UD outside CPL 0 (the binder leaves them unbound when the model has no SMAP).
    /// </summary>
    internal void SetAlignmentCheckFlag(bool set)
    {
        if (_cpl > 0)
        {
            throw new CpuException(ExceptionVector.InvalidOpcode);
        }

        ulong flags = set ? _flags | RflagsBits.AlignmentCheck : _flags & ~RflagsBits.AlignmentCheck;
        if (flags != _flags)
        {
            _flags = flags;
            RefreshTlbContext();
        }
    }

    private void WriteCr4(ulong value)
    {
        if ((value & ~SupportedCr4) != 0 || (LongModeActive && (value & VcpuState.Cr4Pae) == 0))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        CheckControlRegisterPins(4, value);
        if (!_mmu.OnCr4Write(value))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        ulong changed = _cr4 ^ value;
        _cr4 = value;
        UpdateMode();
        if ((changed & (VcpuState.Cr4Pae | VcpuState.Cr4Pge | PageWalker.Cr4Pse)) != 0)
        {
            FlushJumpCache();
        }

        EndBlockAfterThis();
    }

    /// <summary>Leaves the running block after this instruction: what follows may decode or translate differently.</summary>
    private void EndBlockAfterThis()
    {
        if (_inBlock && _exitBlock == ExitNone)
        {
            _exitBlock = ExitAfter;
        }
    }

    /// <summary>CLTS: clears CR0.TS.</summary>
    internal void ClearTaskSwitched()
    {
        RequireCpl0();
        _cr0 &= ~Cr0TaskSwitched;
        _mmu.OnCr0Write(_cr0);
        RefreshFpuAvailability();
    }

    /// <summary>LMSW: loads PE, MP, EM and TS from the low four bits; PE can be set but not cleared.</summary>
    internal void LoadMachineStatusWord(ushort value)
    {
        RequireCpl0();
        ulong cr0 = (_cr0 & ~0xEUL) | (value & 0xFUL) | (_cr0 & VcpuState.Cr0ProtectionEnable);
        WriteCr0(cr0);
    }

    // ---- Debug registers --------------------------------------------------------------------

    /// <summary>MOV from DRn: kept, never acted on (no hardware breakpoints). DR4/DR5 alias DR6/DR7 unless CR4.DE.</summary>
    internal ulong ReadDebugRegister(int n)
    {
        RequireCpl0();
        int index = DebugRegisterIndex(n);
        CheckGeneralDetect();
        return _dr[index];
    }

    internal void WriteDebugRegister(int n, ulong value)
    {
        RequireCpl0();
        int index = DebugRegisterIndex(n);
        CheckGeneralDetect();
        if (index >= 6 && (value >> 32) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        _dr[index] = index switch
        {
            6 => (value & 0x1_E00F) | 0xFFFF_0FF0,
            7 => (value & 0xFFFF_2BFF) | 0x400,
            _ => _is64 ? value : (uint)value,
        };
        if (index != 6)
        {
            RefreshDebugState();
            EndBlockAfterThis();
        }
    }

    private int DebugRegisterIndex(int n)
    {
        if (n is 4 or 5)
        {
            if ((_cr4 & Cr4DebuggingExtensions) != 0)
            {
                throw new CpuException(ExceptionVector.InvalidOpcode);
            }

            return n + 2;
        }

        return n;
    }

    // ---- Descriptor-table registers ---------------------------------------------------------

    /// <summary>LGDT/LIDT: a 16-bit limit and a base (24 bits with a 16-bit operand, 64 in 64-bit mode).</summary>
    internal void LoadDescriptorTable(bool interrupt, ulong linear, int operandSize)
    {
        RequireCpl0();
        ushort limit = (ushort)ReadSystemOperand(linear, 2);
        ulong baseAddress = ReadSystemOperand(linear + 2, _is64 ? 8 : 4);
        if (_is64)
        {
            if (!IsCanonical(baseAddress))
            {
                throw new CpuException(ExceptionVector.GeneralProtection, 0);
            }
        }
        else if (operandSize == 2)
        {
            baseAddress &= 0xFF_FFFF;
        }

        if (interrupt)
        {
            _idtBase = baseAddress;
            _idtLimit = limit;
        }
        else
        {
            CheckDescriptorTablePin(baseAddress, limit);
            _gdtBase = baseAddress;
            _gdtLimit = limit;
        }
    }

    /// <summary>SGDT/SIDT: stores limit and base (10 bytes in 64-bit mode, 6 otherwise).</summary>
    internal void StoreDescriptorTable(bool interrupt, ulong linear)
    {
        ushort limit = interrupt ? _idtLimit : _gdtLimit;
        ulong baseAddress = interrupt ? _idtBase : _gdtBase;
        Span<byte> data = stackalloc byte[10];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(data, limit);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(data[2..], baseAddress);
        WriteBytes(linear, data[..(_is64 ? 10 : 6)]);
    }

    private ulong ReadSystemOperand(ulong linear, int size)
    {
        Span<byte> data = stackalloc byte[8];
        data.Clear();
        ReadBytes(_is64 ? linear : (uint)linear, data[..size]);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(data);
    }

    /// <summary>Reads a system descriptor: 8 bytes, or 16 in IA-32e mode (the high half holds base bits 63:32).</summary>
    private SegmentCache ReadSystemDescriptor(ushort selector, out ulong descriptor)
    {
        int size = LongModeActive ? 16 : 8;
        ulong address = DescriptorAddress(selector, size, ExceptionVector.GeneralProtection, 0);
        descriptor = ReadSystem(address, 8);
        var cache = SegmentCache.FromDescriptor(selector, descriptor);
        if (LongModeActive)
        {
            ulong high = ReadSystem(address + 8, 8);
            if (((high >> 40) & 0x1F) != 0)
            {
                throw new CpuException(ExceptionVector.GeneralProtection, SelectorError(selector));
            }

            cache.Base |= high << 32;

            // An LDT or TSS base must be canonical (SDM LLDT/LTR; KVM's emulator agrees): #GP(selector).
            if (!IsCanonical(cache.Base))
            {
                throw new CpuException(ExceptionVector.GeneralProtection, SelectorError(selector));
            }
        }

        return cache;
    }

    /// <summary>LLDT: a null selector disables the LDT; otherwise a present LDT descriptor from the GDT.</summary>
    internal void LoadLdt(ushort selector)
    {
        RequireProtectedMode();
        RequireCpl0();
        if ((selector & 0xFFFC) == 0)
        {
            _ldtr = SegmentCache.Null(selector);
            return;
        }

        if ((selector & 4) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, SelectorError(selector));
        }

        SegmentCache ldt = ReadSystemDescriptor(selector, out _);
        if (!ldt.IsSystem || ldt.Type != 2)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, SelectorError(selector));
        }

        if (!ldt.Present)
        {
            throw new CpuException(ExceptionVector.SegmentNotPresent, SelectorError(selector));
        }

        _ldtr = ldt;
    }

    /// <summary>LTR: loads an available TSS from the GDT and marks it busy.</summary>
    internal void LoadTaskRegister(ushort selector)
    {
        RequireProtectedMode();
        RequireCpl0();
        if ((selector & 0xFFFC) == 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }

        if ((selector & 4) != 0)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, SelectorError(selector));
        }

        SegmentCache tss = ReadSystemDescriptor(selector, out ulong descriptor);
        bool available = LongModeActive ? tss.Type == 9 : tss.Type is 1 or 9;
        if (!tss.IsSystem || !available)
        {
            throw new CpuException(ExceptionVector.GeneralProtection, SelectorError(selector));
        }

        if (!tss.Present)
        {
            throw new CpuException(ExceptionVector.SegmentNotPresent, SelectorError(selector));
        }

        ulong address = DescriptorAddress(selector, 8, ExceptionVector.GeneralProtection, 0);
        WriteSystem(address + 5, (byte)((descriptor >> 40) | 2), 1);
        tss.Attributes |= 2;
        _tr = tss;
    }

    internal ushort LdtSelector => _ldtr.Selector;

    internal ushort TaskRegisterSelector => _tr.Selector;

    // ---- Descriptor queries: LAR, LSL, VERR, VERW ---------------------------------------------

    /// <summary>
    /// The descriptor LAR/LSL/VERR/VERW examine, if the selector names one the CPL may see; null
    /// (ZF = 0) otherwise. <paramref name="forLimit"/> allows the system types LSL accepts.
    /// </summary>
    private SegmentCache? QueryDescriptor(ushort selector, bool forLimit, bool forAccessRights, out ulong descriptor)
    {
        descriptor = 0;
        if ((selector & 0xFFFC) == 0)
        {
            return null;
        }

        ulong tableLimit = (selector & 4) != 0 ? (_ldtr.Unusable ? 0 : _ldtr.Limit) : _gdtLimit;
        if ((selector & 4) != 0 && _ldtr.Unusable)
        {
            return null;
        }

        if ((ulong)(selector & 0xFFF8) + 7 > tableLimit)
        {
            return null;
        }

        descriptor = ReadDescriptor(selector);
        var cache = SegmentCache.FromDescriptor(selector, descriptor);
        if (cache.IsSystem)
        {
            // LSL: LDT and TSSs; LAR also call gates (legacy mode only: 16-byte forms differ).
            bool valid = LongModeActive
                ? cache.Type is 2 or 9 or 0xB || (forAccessRights && cache.Type == 0xC)
                : cache.Type is 1 or 2 or 3 or 9 or 0xB || (forAccessRights && cache.Type is 4 or 5 or 0xC);
            if (!valid || (!forLimit && !forAccessRights))
            {
                return null;
            }
        }

        bool conformingCode = cache.Conforming;
        if (!conformingCode && (cache.Dpl < _cpl || cache.Dpl < (selector & 3)))
        {
            return null;
        }

        return cache;
    }

    /// <summary>LAR: the access-rights bytes (descriptor bits 8-23 of the high word, masked) or ZF = 0.</summary>
    internal bool LoadAccessRights(ushort selector, out ulong rights)
    {
        RequireProtectedMode();
        rights = 0;
        if (QueryDescriptor(selector, forLimit: false, forAccessRights: true, out ulong descriptor) is null)
        {
            return false;
        }

        rights = (descriptor >> 32) & 0x00F0_FF00;
        return true;
    }

    /// <summary>LSL: the byte-granular segment limit or ZF = 0.</summary>
    internal bool LoadSegmentLimit(ushort selector, out ulong limit)
    {
        RequireProtectedMode();
        limit = 0;
        if (QueryDescriptor(selector, forLimit: true, forAccessRights: false, out _) is not SegmentCache cache)
        {
            return false;
        }

        limit = cache.Limit;
        return true;
    }

    /// <summary>VERR/VERW: whether the segment is readable (writable) at the CPL.</summary>
    internal bool VerifySegment(ushort selector, bool write)
    {
        RequireProtectedMode();
        if (QueryDescriptor(selector, forLimit: false, forAccessRights: false, out _) is not SegmentCache cache)
        {
            return false;
        }

        return write ? cache.Writable : cache.Readable;
    }
}
