using System.Buffers.Binary;
using SharpVisor.Interop;
using SharpVisor.Interop.Kvm;
using SharpVisor.Machine.Protection;
using SharpVisor.Memory;

namespace SharpVisor.Kvm;

/// <summary>
/// Kernel protection on KVM (docs/security.md): once the map locks, every RAM slot that holds a
/// protected frame is split so the protected frames sit in KVM_MEM_READONLY slots — a guest write
/// there exits as MMIO, where it is refused and reported (or, in log mode, done by the VMM) — and
/// KVM_X86_SET_MSR_FILTER makes WRMSR to the pinned MSRs exit, where a change is refused with #GP.
/// KVM gives user space no view of CR0/CR4 writes or of execute rights, so those are not enforced here.
/// </summary>
internal sealed unsafe class KvmProtection
{
    private const uint MsrEfer = 0xC000_0080;
    private const uint MsrLstar = 0xC000_0082;
    private const uint MsrSysenterEip = 0x176;

    // How often a vCPU that exits asks the monitor whether to lock (KVM shows no user-mode entries).
    private static readonly long s_lockPollTicks = TimeSpan.FromMilliseconds(20).Ticks;

    private readonly KvmVirtualMachine _vm;
    private readonly object _gate = new();
    private readonly bool _msrFilterAvailable;
    private int _appliedGeneration;
    private long _lastLockPoll;
    private string? _failure;

    public KvmProtection(KvmVirtualMachine vm, ProtectionMap map)
    {
        _vm = vm;
        Map = map;
        if (vm.System.CheckExtension(KvmCapability.ReadonlyMem) == 0)
        {
            throw new KvmUnavailableException($"{vm.System.DevicePath} lacks KVM_CAP_READONLY_MEM, needed for kernel protection on KVM");
        }

        _msrFilterAvailable = vm.System.CheckExtension(KvmCapability.X86UserSpaceMsr) != 0
            && vm.System.CheckExtension(KvmCapability.X86MsrFilter) != 0;
        if (_msrFilterAvailable)
        {
            // Filtered MSR accesses exit to user space (KVM_EXIT_X86_WRMSR) instead of raising #GP in the kernel.
            var cap = new KvmEnableCap { Cap = (uint)KvmCapability.X86UserSpaceMsr, Arg0 = KvmMsrFilter.ExitReasonFilter };
            if (LibC.Ioctl(vm.Fd, KvmIoctls.EnableCap, &cap) < 0)
            {
                throw LinuxException.FromLastError("KVM_ENABLE_CAP KVM_CAP_X86_USER_SPACE_MSR");
            }
        }

        _appliedGeneration = map.Generation;
    }

    public ProtectionMap Map { get; }

    /// <summary>Whether WRMSR to pinned MSRs reaches SharpVisor (KVM_CAP_X86_MSR_FILTER).</summary>
    public bool MsrPinsEnforced => _msrFilterAvailable;

    /// <summary>
    /// Called by each vCPU before it enters the guest: applies a lock that happened since (slots and
    /// MSR filter). Returns why it could not, or null.
    /// </summary>
    public string? Sync()
    {
        if (Volatile.Read(ref _appliedGeneration) == Map.Generation)
        {
            return _failure;
        }

        lock (_gate)
        {
            int generation = Map.Generation;
            if (_appliedGeneration != generation)
            {
                try
                {
                    SplitSlots();
                    SetMsrFilter();
                }
                catch (LinuxException e)
                {
                    _failure = $"kernel protection could not be applied on KVM: {e.Message}";
                }

                Volatile.Write(ref _appliedGeneration, generation);
            }

            return _failure;
        }
    }

    /// <summary>
    /// While the map is unlocked, at most every 20 ms: lets the monitor look at this vCPU and lock.
    /// KVM does not report user-mode entries, so the monitor is asked at exits instead.
    /// </summary>
    public void PollLock(KvmVcpu vcpu)
    {
        if (Map.IsLocked)
        {
            return;
        }

        long now = DateTime.UtcNow.Ticks;
        long last = Interlocked.Read(ref _lastLockPoll);
        if (now - last < s_lockPollTicks || Interlocked.CompareExchange(ref _lastLockPoll, now, last) != last)
        {
            return;
        }

        KvmProtectionLockContext context;
        try
        {
            context = new KvmProtectionLockContext(vcpu, _vm.Memory);
        }
        catch (Exception e) when (e is LinuxException or InvalidOperationException)
        {
            // This KVM cannot show the vCPU's state (an MSR it does not know): look again at a later exit.
            return;
        }

        Map.Monitor.OnUserModeEntered(context);
    }

    /// <summary>
    /// A KVM MMIO exit at a RAM address: a write to a read-only (protected) slot, or an access that
    /// raced the slot split. Returns false when the address is not writable RAM (the MMIO bus's).
    /// </summary>
    public bool TryHandleRamAccess(KvmVcpu vcpu, ulong address, Span<byte> data, bool isWrite)
    {
        MemoryRegion? region = _vm.Memory.FindRegion(address, (ulong)data.Length);
        if (region is null || region.ReadOnly)
        {
            return false;
        }

        if (!isWrite)
        {
            _vm.Memory.Read(address, data);
            return true;
        }

        if (Map.IsAnyWriteProtected(address, (ulong)data.Length))
        {
            Span<byte> value = stackalloc byte[8];
            value.Clear();
            data.CopyTo(value);
            if (Map.Report(ProtectionViolationKind.KernelWrite, vcpu.Id, vcpu.ReadRip(), address, BinaryPrimitives.ReadUInt64LittleEndian(value)))
            {
                // Refused: KVM has already completed the instruction as an MMIO store that goes nowhere.
                return true;
            }
        }

        _vm.Memory.Write(address, data);
        return true;
    }

    /// <summary>A filtered WRMSR: true when it is refused (#GP); otherwise it is written with KVM_SET_MSRS.</summary>
    public bool RefusesMsrWrite(KvmVcpu vcpu, uint index, ulong value)
    {
        RegisterPins pins = Map.Pins;
        bool violates = index switch
        {
            MsrLstar => pins.Lstar is { } lstar && value != lstar,
            MsrSysenterEip => pins.SysenterEip is { } eip && value != eip,
            MsrEfer => (value & pins.EferBits) != pins.EferBits,
            _ => false,
        };
        // In log mode a violating value may already be in place (KVM can exit twice for one WRMSR
        // that changes EFER, as it restarts the instruction): rewriting it is not a new violation.
        if (violates && !Map.Enforce && vcpu.ReadMsrs(index)[0] == value)
        {
            violates = false;
        }

        if (violates && Map.Report(ProtectionViolationKind.ModelSpecificRegister, vcpu.Id, vcpu.ReadRip(), index, value))
        {
            return true;
        }

        // Allowed (same value, a pinned EFER bit kept, log mode): KVM_SET_MSRS is host-initiated, not filtered.
        return !vcpu.TryWriteMsr(index, value);
    }

    private void SplitSlots()
    {
        ProtectedRange[] ranges = Merge(Map.WriteProtected);
        IReadOnlyList<MemoryRegion> regions = _vm.MappedRegions;
        for (int i = 0; i < regions.Count; i++)
        {
            MemoryRegion region = regions[i];
            if (region.ReadOnly || !ranges.Any(r => r.Start < region.End && region.GuestPhysicalAddress < r.End))
            {
                continue;
            }

            // KVM cannot resize a slot: delete it and map its pieces. A vCPU that touches the range in
            // between exits as MMIO (TryHandleRamAccess) or to the instruction emulator fallback.
            SetSlot((uint)i, 0, 0, 0, 0);
            ulong cursor = region.GuestPhysicalAddress;
            foreach (ProtectedRange r in ranges.Where(r => r.Start < region.End && region.GuestPhysicalAddress < r.End))
            {
                ulong start = Math.Max(r.Start, region.GuestPhysicalAddress);
                ulong end = Math.Min(r.End, region.End);
                if (start > cursor)
                {
                    MapPiece(region, cursor, start, readOnly: false);
                }

                MapPiece(region, start, end, readOnly: true);
                cursor = end;
            }

            if (cursor < region.End)
            {
                MapPiece(region, cursor, region.End, readOnly: false);
            }
        }
    }

    private void MapPiece(MemoryRegion region, ulong start, ulong end, bool readOnly)
    {
        ulong host = (ulong)region.HostAddress + (start - region.GuestPhysicalAddress);
        SetSlot(_vm.AllocateSlot(), readOnly ? KvmUserspaceMemoryRegion.MemReadonly : 0, start, end - start, host);
    }

    private void SetSlot(uint slot, uint flags, ulong address, ulong size, ulong host)
    {
        var memoryRegion = new KvmUserspaceMemoryRegion { Slot = slot, Flags = flags, GuestPhysAddr = address, MemorySize = size, UserspaceAddr = host };
        if (LibC.Ioctl(_vm.Fd, KvmIoctls.SetUserMemoryRegion, &memoryRegion) < 0)
        {
            throw LinuxException.FromLastError($"KVM_SET_USER_MEMORY_REGION slot {slot} at 0x{address:x}+0x{size:x}");
        }
    }

    private void SetMsrFilter()
    {
        RegisterPins pins = Map.Pins;
        var pinned = new List<uint>();
        if (pins.Lstar is not null)
        {
            pinned.Add(MsrLstar);
        }

        if (pins.SysenterEip is not null)
        {
            pinned.Add(MsrSysenterEip);
        }

        if (pins.EferBits != 0)
        {
            pinned.Add(MsrEfer);
        }

        if (pinned.Count == 0 || !_msrFilterAvailable)
        {
            return;
        }

        // One range per MSR, its one bitmap bit 0: writes denied (they exit), reads allowed.
        byte deny = 0;
        var filter = new KvmMsrFilter { Flags = KvmMsrFilter.DefaultAllow };
        var range = (KvmMsrFilterRange*)filter.Ranges;
        for (int i = 0; i < pinned.Count; i++)
        {
            range[i] = new KvmMsrFilterRange { Flags = KvmMsrFilterRange.FilterWrite, NMsrs = 1, Base = pinned[i], Bitmap = (nint)(&deny) };
        }

        if (LibC.Ioctl(_vm.Fd, KvmIoctls.SetMsrFilter, &filter) < 0)
        {
            throw LinuxException.FromLastError("KVM_X86_SET_MSR_FILTER");
        }
    }

    private static ProtectedRange[] Merge(IReadOnlyList<ProtectedRange> ranges)
    {
        var merged = new List<ProtectedRange>();
        foreach (ProtectedRange r in ranges.OrderBy(r => r.Start))
        {
            if (merged.Count > 0 && r.Start <= merged[^1].End)
            {
                merged[^1] = new ProtectedRange(merged[^1].Start, Math.Max(merged[^1].End, r.End));
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged.ToArray();
    }
}
