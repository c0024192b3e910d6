using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine.Protection;

namespace SharpVisor.Emulator;

/// <summary>
/// Kernel protection on this CPU (docs/security.md): the MMU refuses stores to protected frames
/// and supervisor fetches outside kernel text; here the CPU reports those with the guest RIP,
/// enforces the pinned CR0/CR4 bits and MSRs, and notices the first entries to user mode, when
/// the monitor may lock.
/// </summary>
public sealed unsafe partial class X86Cpu
{
    private bool _userModeEntered;
    private int _protectionGeneration;

    // The GDTR this vCPU had when it locked its GDT (docs/security.md); LGDT may not move it after.
    private bool _descriptorTablePinned;
    private ulong _pinnedGdtBase;
    private ushort _pinnedGdtLimit;

    /// <summary>The domain's kernel protection (null: none); shared with the MMU.</summary>
    public ProtectionMap? Protection
    {
        get => _mmu.Protection;
        set => _mmu.Protection = value;
    }

    /// <summary>The vCPU number violations are reported with.</summary>
    public int ProtectionVcpuId { get; set; }

    /// <summary>The address of the instruction being executed (RIP, or the faulting instruction inside a block).</summary>
    internal ulong CurrentInstructionRip =>
        _inBlock && _block is { } block ? (_regs[RegisterFile.BlockRip] + block.Ops[_opIndex].Offset) & _ipMask : _rip;

    /// <summary>
    /// Whether the CPU entered user mode while the protection was unlocked since the last call
    /// (a run returns at the next block boundary after such an entry). Clears the flag.
    /// </summary>
    public bool TakeUserModeEntry()
    {
        bool entered = _userModeEntered;
        _userModeEntered = false;
        return entered;
    }

    /// <summary>
    /// Drops translations and decoded code cached under other protection rules, when the map's
    /// generation changed (the lock). Cheap when it did not; call between runs.
    /// </summary>
    public void SyncProtection()
    {
        if (Protection is { } protection && protection.Generation != _protectionGeneration)
        {
            _protectionGeneration = protection.Generation;
            if (protection.IsLocked && protection.ProtectsDescriptorTables && !_descriptorTablePinned)
            {
                PinDescriptorTable(protection);
            }

            _mmu.FlushAll();
            FlushCodeCache();
        }
    }

    /// <summary>
    /// Locks the GDT this vCPU uses now (Linux: GDTR points at the read-only cpu_entry_area alias
    /// of the CPU's gdt_page; the frame behind it is what gets filtered, whatever alias a store uses).
    /// </summary>
    private void PinDescriptorTable(ProtectionMap protection)
    {
        if (_mmu is MmuBase mmu && _gdtLimit != 0 && mmu.Probe(_gdtBase, out ulong physical, out _)
            && protection.ProtectDescriptorTable(ProtectionVcpuId, physical, _gdtLimit))
        {
            _descriptorTablePinned = true;
            _pinnedGdtBase = _gdtBase;
            _pinnedGdtLimit = _gdtLimit;
        }
    }

    /// <summary>#GP(0) when an LGDT would move a locked GDT and the protection enforces.</summary>
    private void CheckDescriptorTablePin(ulong baseAddress, ushort limit)
    {
        if (_descriptorTablePinned && (baseAddress != _pinnedGdtBase || limit != _pinnedGdtLimit)
            && _mmu.Protection is { } protection
            && protection.Report(ProtectionViolationKind.DescriptorTable, ProtectionVcpuId, CurrentInstructionRip, baseAddress, limit))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    /// <summary>
    /// A store into a locked GDT's frame: #PF (as for other protected frames) when it would change a
    /// descriptor other than the TLS slots and the protection enforces; reported either way.
    /// </summary>
    private void CheckDescriptorTableStore(ulong linear, nint host, ulong physical, ReadOnlySpan<byte> data, bool implicitAccess)
    {
        if (_mmu.Protection is not { } protection
            || protection.AllowsDescriptorTableStore(physical, new ReadOnlySpan<byte>((void*)host, data.Length), data))
        {
            return;
        }

        Span<byte> value = stackalloc byte[8];
        value.Clear();
        data[..Math.Min(8, data.Length)].CopyTo(value);
        if (protection.Report(ProtectionViolationKind.DescriptorTable, ProtectionVcpuId, CurrentInstructionRip, linear, BitConverter.ToUInt64(value)))
        {
            uint user = !implicitAccess && _cpl == 3 ? (uint)PageFaultErrorCode.User : 0;
            throw RaisePageFault(linear, (uint)(MmuBase.ProtectionFaultCode | PageFaultErrorCode.Write) | user);
        }
    }

    /// <summary>Called by UpdateMode: a CPL 3 entry before the lock stops the run so the monitor can look.</summary>
    private void NoteUserModeEntry()
    {
        if (_cpl == 3 && _mmu.Protection is { IsLocked: false })
        {
            _userModeEntered = true;
            SetAttention(AttentionStop, true);
        }
    }

    private void ReportTranslationViolation(ProtectionViolationKind kind, ulong linear) =>
        _mmu.Protection?.Report(kind, ProtectionVcpuId, CurrentInstructionRip, linear, 0);

    /// <summary>#GP(0) when a MOV to CR0 (<paramref name="register"/> 0) or CR4 clears a pinned bit and the protection enforces.</summary>
    private void CheckControlRegisterPins(int register, ulong value)
    {
        if (_mmu.Protection is not { IsLocked: true } protection)
        {
            return;
        }

        ulong pinned = register == 0 ? protection.Pins.Cr0Bits : protection.Pins.Cr4Bits;
        if ((pinned & ~value) != 0
            && protection.Report(ProtectionViolationKind.ControlRegister, ProtectionVcpuId, CurrentInstructionRip, (ulong)register, value))
        {
            throw new CpuException(ExceptionVector.GeneralProtection, 0);
        }
    }

    /// <summary>False (#GP) when a WRMSR would change a pinned MSR or clear a pinned EFER bit and the protection enforces.</summary>
    private bool CheckMsrPins(uint index, ulong value)
    {
        if (_mmu.Protection is not { IsLocked: true } protection)
        {
            return true;
        }

        RegisterPins pins = protection.Pins;
        bool violates = index switch
        {
            MsrLstar => pins.Lstar is { } lstar && lstar != value,
            MsrSysenterEip => pins.SysenterEip is { } eip && eip != value,
            MsrEfer => (pins.EferBits & ~value) != 0,
            _ => false,
        };
        return !violates || !protection.Report(ProtectionViolationKind.ModelSpecificRegister, ProtectionVcpuId, CurrentInstructionRip, index, value);
    }

    /// <summary>The state a protection monitor reads when this CPU enters user mode.</summary>
    public IProtectionLockContext CreateProtectionLockContext(int vcpuId) => new LockContext(this, vcpuId);

    private sealed class LockContext(X86Cpu cpu, int vcpuId) : IProtectionLockContext
    {
        public int VcpuId => vcpuId;

        public ulong Cr0 => cpu._cr0;

        public ulong Cr3 => cpu._cr3;

        public ulong Cr4 => cpu._cr4;

        public ulong Efer => cpu._efer;

        public ulong Lstar => cpu._lstar;

        public ulong SysenterEip => cpu._sysenterEip;

        public ulong IdtBase => cpu._idtBase;

        public ushort IdtLimit => cpu._idtLimit;

        public bool TryTranslate(ulong linear, out ulong physicalAddress, out bool writable)
        {
            physicalAddress = 0;
            writable = false;
            if (cpu._mmu is not MmuBase mmu)
            {
                return false;
            }

            return mmu.Probe(linear, out physicalAddress, out writable);
        }
    }
}
