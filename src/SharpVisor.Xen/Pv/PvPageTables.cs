using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Xen.Pv;

/// <summary>
/// Direct paging for one PV domain: the frame table (owner, type, type count, reference count,
/// pinned, validated per machine frame) and the operations that change page tables — mmu_update,
/// update_va_mapping, mmuext_op — with Xen's type discipline (xen/arch/x86/mm.c):
/// <list type="bullet">
/// <item>A frame has at most one type with a non-zero type count: writable, or a page table of one
/// level, or a descriptor page. A writable mapping needs the Writable type, an Ln entry needs its
/// target to be an L(n-1) table; a reference of another type fails while the count is non-zero.</item>
/// <item>The first type reference of a table type validates it: every present entry is checked
/// (flags, ownership, the next level's type) and holds its references until the last type
/// reference goes, when they are all released and the frame may be retyped.</item>
/// <item>Page tables map only frames the domain owns; the hypervisor's L4 slots are its own.</item>
/// </list>
/// Machine addresses are the emulator's physical addresses (<see cref="GuestMemory"/>). Every
/// failure is a negative Xen errno, counted under "pv-refused" and "pv-refused-&lt;reason&gt;".
/// One lock serializes the domain's updates, as Xen's per-page locks would for these paths.
/// </summary>
public sealed partial class PvPageTables
{
    public const int EntriesPerTable = 512;

    // mmu_update commands (low two bits of ptr).
    public const int MmuNormalPtUpdate = 0;
    public const int MmuMachphysUpdate = 1;
    public const int MmuPtUpdatePreserveAd = 2;
    public const int MmuPtUpdateNoTranslate = 3;

    // update_va_mapping flags.
    public const ulong UvmfTlbFlush = 1;
    public const ulong UvmfInvlpg = 2;
    public const ulong UvmfFlushTypeMask = 3;
    public const ulong UvmfAll = 4;

    private readonly GuestMemory _memory;
    private readonly PvPageFrame[] _frames;
    private readonly PvPhysToMachine _physToMachine;
    private readonly object _lock = new();
    private readonly Action<string>? _log;
    private IPvMmuHost? _host;
    private int _logged;

    /// <param name="memory">Machine memory: every frame of the table is a page of it.</param>
    /// <param name="physToMachine">The domain's P2M/M2P; its machine frames are the ones the domain owns.</param>
    /// <param name="m2pL3Entry">What the hypervisor writes into L4 slot 256 of every validated L4 (the read-only M2P), or 0.</param>
    public PvPageTables(GuestMemory memory, PvPhysToMachine physToMachine, ExitCounters counters, ulong m2pL3Entry = 0, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(physToMachine);
        ArgumentNullException.ThrowIfNull(counters);
        _memory = memory;
        _physToMachine = physToMachine;
        Counters = counters;
        M2pL3Entry = m2pL3Entry;
        _log = log;
        _frames = new PvPageFrame[physToMachine.MachineFrameCount];
        foreach (ulong mfn in physToMachine.P2m)
        {
            if (!memory.IsValid(mfn << 12, 4096))
            {
                throw new ArgumentException($"machine frame 0x{mfn:x} is not memory", nameof(physToMachine));
            }

            _frames[mfn].Owned = true;
        }
    }

    public ExitCounters Counters { get; }

    public PvPhysToMachine PhysToMachine => _physToMachine;

    /// <summary>The hypervisor's entry for L4 slot 256 (present, user, read-only), written into each L4 it validates.</summary>
    public ulong M2pL3Entry { get; }

    /// <summary>The machine address of the M2P table the guest reads at 0xFFFF800000000000 (kept in step with MMU_MACHPHYS_UPDATE), or 0.</summary>
    public ulong M2pAddress { get; init; }

    public void Connect(IPvMmuHost host) => _host = host;

    /// <summary>A hypervisor page the domain may map (Xen's share_xen_page_with_guest): shared_info.</summary>
    public void AddDomainFrame(ulong mfn)
    {
        lock (_lock)
        {
            _frames[mfn].Owned = true;
            _sharedFrames.Add(mfn);            // the hypervisor's still: never given back by the balloon
        }
    }

    /// <summary>A copy of frame <paramref name="mfn"/>'s accounting (for tests and diagnostics).</summary>
    internal PvPageFrame Frame(ulong mfn)
    {
        lock (_lock)
        {
            return _frames[mfn];
        }
    }

    public bool Owns(ulong mfn) => mfn < (ulong)_frames.Length && _frames[mfn].Owned;

    /// <summary>
    /// Runs <paramref name="write"/> — a hypervisor write on the guest's behalf into its own frame
    /// (a grant copy) — holding a Writable type reference on <paramref name="mfn"/> meanwhile, as
    /// Xen's gnttab_copy does: false, and nothing written, when the frame is not the domain's or is
    /// a page table or descriptor page in use, whose contents only validated updates may change.
    /// </summary>
    public bool TryWriteAsWritable(ulong mfn, Action write)
    {
        if (TryWriteAs(mfn, PvPageType.Writable, write))
        {
            return true;
        }

        Counters.Increment("pv-refused");
        Counters.Increment("pv-refused-write-typed-frame");
        return false;
    }

    /// <summary>
    /// Runs <paramref name="write"/> holding a <paramref name="type"/> type reference on
    /// <paramref name="mfn"/> (update_descriptor: SegmentDescriptor for a GDT frame in use, else
    /// Writable), so no other vCPU can retype the frame meanwhile. False when it cannot take it.
    /// </summary>
    public bool TryWriteAs(ulong mfn, PvPageType type, Action write)
    {
        ArgumentNullException.ThrowIfNull(write);
        lock (_lock)
        {
            if (!Owns(mfn) || GetType(mfn, type) != 0)
            {
                return false;
            }

            try
            {
                write();
            }
            finally
            {
                PutType(mfn);
            }

            return true;
        }
    }

    // ---- hypercall-level operations --------------------------------------------------------

    /// <summary>One mmu_update request: <paramref name="ptr"/> = machine address of the entry | command, <paramref name="value"/> = the new entry (or pfn).</summary>
    public int MmuUpdate(ulong ptr, ulong value)
    {
        int command = (int)(ptr & 3);
        ptr &= ~3UL;
        lock (_lock)
        {
            if (command == MmuMachphysUpdate)
            {
                ulong target = ptr >> 12;
                if (!Owns(target))
                {
                    return Refuse(XenErrno.EINVAL, "machphys-not-owned", $"M2P update of machine frame 0x{target:x}, not the domain's");
                }

                _physToMachine.SetPhysical(target, value);
                if (M2pAddress != 0)
                {
                    _memory.Write(M2pAddress + (target * 8), value);
                }

                return 0;
            }

            // NORMAL, PRESERVE_AD and NO_TRANSLATE are the same for a PV domain (its frame numbers are machine frames).
            if ((ptr & 7) != 0)
            {
                return Refuse(XenErrno.EINVAL, "misaligned-entry", $"entry address 0x{ptr:x} is not 8-byte aligned");
            }

            ulong mfn = ptr >> 12;
            if (!Owns(mfn))
            {
                return Refuse(XenErrno.EINVAL, "table-not-owned", $"update of an entry in machine frame 0x{mfn:x}, not the domain's");
            }

            ref PvPageFrame frame = ref _frames[mfn];
            int slot = (int)((ptr & 0xFFF) >> 3);
            if (frame.TypeCount > 0 && frame.Validated && Level(frame.Type) > 0)
            {
                return ModifyEntry(Level(frame.Type), mfn, slot, value, command == MmuPtUpdatePreserveAd);
            }

            if (frame.TypeCount > 0 && frame.Type != PvPageType.Writable)
            {
                return Refuse(XenErrno.EINVAL, "update-typed-frame", $"update of machine frame 0x{mfn:x}, in use as {frame.Type}");
            }

            // Not a page table in use: an ordinary write to the domain's own page.
            WriteEntry(mfn, slot, value);
            return 0;
        }
    }

    /// <summary>update_va_mapping: the L1 entry mapping <paramref name="linearAddress"/> in the vCPU's kernel table becomes <paramref name="value"/>.</summary>
    public int UpdateVaMapping(PvVcpuPaging vcpu, ulong linearAddress, ulong value, ulong flags)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        int rc;
        lock (_lock)
        {
            if (!TryFindL1(vcpu.KernelBase, linearAddress, out ulong l1Mfn, out string why))
            {
                return Refuse(XenErrno.EINVAL, "va-unmapped", $"update_va_mapping 0x{linearAddress:x}: {why}");
            }

            rc = ModifyEntry(1, l1Mfn, (int)((linearAddress >> 12) & 511), value, preserveAccessedDirty: false);
        }

        if (rc == 0)
        {
            int target = (flags & UvmfAll) != 0 || (flags & ~7UL) != 0 ? -1 : vcpu.VcpuId; // a MULTI vCPU mask: flush all (over-flushing is safe)
            switch (flags & UvmfFlushTypeMask)
            {
                case UvmfTlbFlush:
                    _host?.FlushAll(target);
                    break;
                case UvmfInvlpg:
                    _host?.FlushPage(target, linearAddress);
                    break;
            }
        }

        return rc;
    }

    /// <summary>
    /// The writable-page-tables assist (Xen's ptwr): a guest kernel store of <paramref name="size"/>
    /// bytes (1, 2, 4 or 8, naturally aligned) at <paramref name="linearAddress"/> that faulted
    /// because it hits a validated L1 table (mapped read-only, as every page table is). The store is
    /// applied as an L1 entry update with the usual validation. <paramref name="merge"/> turns the
    /// operand that is there into the one to write, or declines (a compare-exchange that does not
    /// match); it and <paramref name="oldOperand"/> see the operand's bytes of the entry. False when
    /// the address is not in an L1 table in use, so the fault is the guest's; otherwise
    /// <paramref name="rc"/> is the update's result.
    /// </summary>
    public bool TryWriteL1Entry(PvVcpuPaging vcpu, ulong linearAddress, int size, Func<ulong, ulong?> merge, out ulong oldOperand, out int rc)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        ArgumentNullException.ThrowIfNull(merge);
        oldOperand = 0;
        rc = 0;
        if (size is not (1 or 2 or 4 or 8) || (linearAddress & (ulong)(size - 1)) != 0)
        {
            return false;
        }

        lock (_lock)
        {
            // The L1 entry that maps the written page, and through it the page: it must be an L1 in use.
            if (!TryFindL1(vcpu.KernelBase, linearAddress, out ulong mappingTable, out _))
            {
                return false;
            }

            ulong mapping = ReadEntry(mappingTable, (int)((linearAddress >> 12) & 511));
            ulong table = PvPte.Frame(mapping);
            if ((mapping & PvPte.Present) == 0 || !Owns(table) || _frames[table].Type != PvPageType.L1
                || _frames[table].TypeCount == 0 || !_frames[table].Validated)
            {
                return false;
            }

            int slot = (int)((linearAddress & 0xFFF) >> 3);
            ulong entry = ReadEntry(table, slot);
            int shift = (int)(linearAddress & 7) * 8;
            ulong mask = size == 8 ? ulong.MaxValue : ((1UL << (size * 8)) - 1) << shift;
            oldOperand = (entry & mask) >> shift;
            if (merge(oldOperand) is not ulong stored)
            {
                return true;                     // a compare-exchange that did not match: nothing to write
            }

            ulong value = (entry & ~mask) | ((stored << shift) & mask);
            Counters.Increment("pv-ptwr-emulated");
            rc = ModifyEntry(1, table, slot, value, preserveAccessedDirty: false);
            return true;
        }
    }

    /// <summary>One mmuext_op command (<see cref="PvMmuextCommand"/>) for <paramref name="vcpu"/>.</summary>
    public int MmuextOp(PvVcpuPaging vcpu, PvMmuextCommand command, ulong argument1, ulong argument2)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        switch (command)
        {
            case PvMmuextCommand.PinL1Table:
            case PvMmuextCommand.PinL2Table:
            case PvMmuextCommand.PinL3Table:
            case PvMmuextCommand.PinL4Table:
                return Pin(argument1, (int)command + 1);
            case PvMmuextCommand.UnpinTable:
                return Unpin(argument1);
            case PvMmuextCommand.NewBaseptr:
                return NewBase(vcpu, argument1, user: false);
            case PvMmuextCommand.NewUserBaseptr:
                return NewBase(vcpu, argument1, user: true);
            case PvMmuextCommand.TlbFlushLocal:
                _host?.FlushAll(vcpu.VcpuId);
                return 0;
            case PvMmuextCommand.InvlpgLocal:
                _host?.FlushPage(vcpu.VcpuId, argument1);
                return 0;
            case PvMmuextCommand.TlbFlushMulti:
            case PvMmuextCommand.TlbFlushAll:
                _host?.FlushAll(-1);
                return 0;
            case PvMmuextCommand.InvlpgMulti:
            case PvMmuextCommand.InvlpgAll:
                _host?.FlushPage(-1, argument1);
                return 0;
            case PvMmuextCommand.ClearPage:
                return ClearOrCopyPage(argument1, source: null);
            case PvMmuextCommand.CopyPage:
                return ClearOrCopyPage(argument1, argument2);
            case PvMmuextCommand.SetLdt:
                return SetLdt(vcpu, argument1, argument2);
            case PvMmuextCommand.FlushCache:
            case PvMmuextCommand.FlushCacheGlobal:
                // Xen: only domains with cache-flush permission (I/O memory) may; an unprivileged domU may not.
                return Refuse(XenErrno.EACCES, "flush-cache", "cache flush by an unprivileged domain");
            default:
                Counters.Increment($"pv-mmuext-enosys-{(int)command}");
                return -XenErrno.ENOSYS;
        }
    }

    /// <summary>MMUEXT_SET_LDT (arg1 linear address, arg2 entries), with Xen's checks: page-aligned, a guest address, at most 8192 entries.</summary>
    private int SetLdt(PvVcpuPaging vcpu, ulong linearAddress, ulong entries)
    {
        ulong address = entries == 0 ? 0 : linearAddress;
        ulong canonical = (ulong)((long)(address << 16) >> 16);
        if ((address & 0xFFF) != 0 || canonical != address || PvPte.IsHypervisorL4Slot((int)((address >> 39) & 511)) || entries > 8192)
        {
            return Refuse(XenErrno.EINVAL, "set-ldt", $"SET_LDT at 0x{linearAddress:x} with {entries} entries");
        }

        vcpu.LdtBase = address;
        vcpu.LdtEntries = (uint)entries;
        return 0;
    }

    /// <summary>MMUEXT_PIN_Ln_TABLE: the frame takes (and keeps, until unpinned) an Ln type reference.</summary>
    private int Pin(ulong mfn, int level)
    {
        lock (_lock)
        {
            if (!Owns(mfn))
            {
                return Refuse(XenErrno.EINVAL, "pin-not-owned", $"pin of machine frame 0x{mfn:x}, not the domain's");
            }

            _frames[mfn].ReferenceCount++;
            int rc = GetType(mfn, (PvPageType)level);
            if (rc != 0)
            {
                _frames[mfn].ReferenceCount--;
                return Refuse(-rc, "pin-invalid", $"pin of machine frame 0x{mfn:x} as L{level} failed: -{-rc}");
            }

            if (_frames[mfn].Pinned)
            {
                PutType(mfn);
                _frames[mfn].ReferenceCount--;
                return Refuse(XenErrno.EINVAL, "pin-twice", $"machine frame 0x{mfn:x} is already pinned");
            }

            _frames[mfn].Pinned = true;
            Counters.Increment("pv-pins");
            return 0;
        }
    }

    private int Unpin(ulong mfn)
    {
        lock (_lock)
        {
            if (!Owns(mfn) || !_frames[mfn].Pinned)
            {
                return Refuse(XenErrno.EINVAL, "unpin-not-pinned", $"unpin of machine frame 0x{mfn:x}, which is not a pinned table of the domain");
            }

            _frames[mfn].Pinned = false;
            PutType(mfn);
            _frames[mfn].ReferenceCount--;
            return 0;
        }
    }

    /// <summary>MMUEXT_NEW_BASEPTR / NEW_USER_BASEPTR: the new L4 takes a type reference, the old one loses its.</summary>
    private int NewBase(PvVcpuPaging vcpu, ulong mfn, bool user)
    {
        lock (_lock)
        {
            if (mfn != 0 || !user)
            {
                // 0 is "none" in a base pointer: a kernel base of frame 0 could never be released again.
                if (mfn == 0 || !Owns(mfn))
                {
                    return Refuse(XenErrno.EINVAL, "base-not-owned", $"new base pointer 0x{mfn:x}, not the domain's");
                }

                _frames[mfn].ReferenceCount++;
                int rc = GetType(mfn, PvPageType.L4);
                if (rc != 0)
                {
                    _frames[mfn].ReferenceCount--;
                    return Refuse(-rc, "base-invalid", $"new base pointer 0x{mfn:x} is not a valid L4: -{-rc}");
                }
            }

            ulong old = user ? vcpu.UserBase : vcpu.KernelBase;
            if (user)
            {
                vcpu.UserBase = mfn;
            }
            else
            {
                vcpu.KernelBase = mfn;
            }

            if (old != 0)
            {
                PutType(old);
                _frames[old].ReferenceCount--;
            }
        }

        _host?.BaseChanged(vcpu);
        return 0;
    }

    private int ClearOrCopyPage(ulong mfn, ulong? source)
    {
        lock (_lock)
        {
            if (!Owns(mfn) || (source is ulong s && !Owns(s)))
            {
                return Refuse(XenErrno.EINVAL, "copy-not-owned", $"clear/copy of machine frame 0x{mfn:x}, not the domain's");
            }

            // The destination must be writable-typable (not a table in use); the source only readable.
            int rc = GetType(mfn, PvPageType.Writable);
            if (rc != 0)
            {
                return Refuse(-rc, "copy-typed-frame", $"clear/copy into machine frame 0x{mfn:x}, in use as {_frames[mfn].Type}");
            }

            if (source is ulong from)
            {
                _memory.Write(mfn << 12, _memory.GetSpan(from << 12, 4096));
            }
            else
            {
                _memory.Fill(mfn << 12, 4096, 0);
            }

            _memory.NotifyExternalWrite(mfn << 12, 4096);
            PutType(mfn);
            return 0;
        }
    }

    /// <summary>
    /// A type reference (and a general one) on a frame of the domain for a use outside page tables:
    /// a GDT frame (SegmentDescriptor) while set_gdt has it. 0 or a negative errno.
    /// </summary>
    public int GetTypeReference(ulong mfn, PvPageType type)
    {
        lock (_lock)
        {
            if (!Owns(mfn))
            {
                return Refuse(XenErrno.EINVAL, "type-not-owned", $"machine frame 0x{mfn:x} is not the domain's");
            }

            _frames[mfn].ReferenceCount++;
            int rc = GetType(mfn, type);
            if (rc != 0)
            {
                _frames[mfn].ReferenceCount--;
                return Refuse(-rc, $"type-{type}", $"machine frame 0x{mfn:x} cannot become {type}: it is {_frames[mfn].Type}");
            }

            return 0;
        }
    }

    /// <summary>Drops what <see cref="GetTypeReference"/> took.</summary>
    public void PutTypeReference(ulong mfn)
    {
        lock (_lock)
        {
            PutType(mfn);
            _frames[mfn].ReferenceCount--;
        }
    }

    /// <summary>The type a frame is in use as (None when its type count is 0), for update_descriptor.</summary>
    public PvPageType TypeInUse(ulong mfn)
    {
        lock (_lock)
        {
            return Owns(mfn) && _frames[mfn].TypeCount > 0 ? _frames[mfn].Type : PvPageType.None;
        }
    }

    // ---- the type and reference discipline -------------------------------------------------

    private static int Level(PvPageType type) => type is >= PvPageType.L1 and <= PvPageType.L4 ? (int)type : 0;

    /// <summary>get_page_type: one more reference needing <paramref name="type"/>; validates a table on its first one.</summary>
    private int GetType(ulong mfn, PvPageType type)
    {
        ref PvPageFrame frame = ref _frames[mfn];
        if (frame.TypeCount == 0)
        {
            if (frame.Type != type)
            {
                frame.Type = type;
                frame.Validated = false;
            }

            frame.TypeCount = 1;
            if (Level(type) > 0 && !frame.Validated)
            {
                int rc = Validate(mfn, Level(type));
                if (rc != 0)
                {
                    frame.TypeCount = 0;
                    frame.Type = PvPageType.None;
                    return rc;
                }

                frame.Validated = true;
            }

            return 0;
        }

        if (frame.Type != type)
        {
            return -XenErrno.EINVAL;
        }

        if (Level(type) > 0 && !frame.Validated)
        {
            return -XenErrno.EINVAL; // being validated further up this very walk: a loop of tables
        }

        frame.TypeCount++;
        return 0;
    }

    /// <summary>put_page_type: the last reference of a table type releases what its entries hold.</summary>
    private void PutType(ulong mfn)
    {
        ref PvPageFrame frame = ref _frames[mfn];
        if (frame.TypeCount <= 0)
        {
            throw new InvalidOperationException($"type count of machine frame 0x{mfn:x} underflows");
        }

        if (--frame.TypeCount == 0 && Level(frame.Type) > 0 && frame.Validated)
        {
            frame.Validated = false;
            int level = Level(frame.Type);
            for (int slot = 0; slot < EntriesPerTable; slot++)
            {
                if (level != 4 || !PvPte.IsHypervisorL4Slot(slot))
                {
                    PutEntry(level, ReadEntry(mfn, slot));
                }
            }
        }
    }

    /// <summary>Checks every present guest entry of the table and takes its references; on a failure releases those taken.</summary>
    private int Validate(ulong mfn, int level)
    {
        for (int slot = 0; slot < EntriesPerTable; slot++)
        {
            if (level == 4 && PvPte.IsHypervisorL4Slot(slot))
            {
                continue;
            }

            ulong entry = ReadEntry(mfn, slot);
            int rc = GetEntry(level, entry);
            if (rc != 0)
            {
                for (int undo = slot - 1; undo >= 0; undo--)
                {
                    if (level != 4 || !PvPte.IsHypervisorL4Slot(undo))
                    {
                        PutEntry(level, ReadEntry(mfn, undo));
                    }
                }

                Counters.Increment($"pv-invalid-l{level}-entry");
                return rc;
            }

            ulong adjusted = PvPte.Adjust(level, entry);
            if (adjusted != entry)
            {
                WriteEntry(mfn, slot, adjusted);
            }
        }

        if (level == 4)
        {
            // Xen's slots: the M2P in 256, nothing in the rest (a guest's own values there are overwritten).
            for (int slot = PvPte.FirstHypervisorSlot; slot <= PvPte.LastHypervisorSlot; slot++)
            {
                WriteEntry(mfn, slot, slot == PvPte.FirstHypervisorSlot ? M2pL3Entry : 0);
            }
        }

        Counters.Increment($"pv-validated-l{level}");
        return 0;
    }

    /// <summary>get_page_from_lNe: the references one present entry of a level-<paramref name="level"/> table holds.</summary>
    private int GetEntry(int level, ulong entry)
    {
        if ((entry & PvPte.Present) == 0)
        {
            return 0;
        }

        if ((entry & PvPte.DisallowMask(level)) != 0)
        {
            return -XenErrno.EINVAL;
        }

        ulong mfn = PvPte.Frame(entry);
        if (level == 1)
        {
            if (mfn >= (ulong)_frames.Length)
            {
                return -XenErrno.EPERM; // not memory: an attempt to map I/O space the domain has no access to
            }

            if (!_frames[mfn].Owned)
            {
                return -XenErrno.EBUSY; // another owner's frame (Xen's could_not_pin)
            }

            _frames[mfn].ReferenceCount++;
            if ((entry & PvPte.Writable) != 0 && GetType(mfn, PvPageType.Writable) != 0)
            {
                _frames[mfn].ReferenceCount--;
                return -XenErrno.EBUSY;
            }

            return 0;
        }

        if (!Owns(mfn))
        {
            return -XenErrno.EINVAL;
        }

        _frames[mfn].ReferenceCount++;
        int rc = GetType(mfn, (PvPageType)(level - 1));
        if (rc != 0)
        {
            _frames[mfn].ReferenceCount--;
        }

        return rc;
    }

    /// <summary>put_page_from_lNe: releases what <see cref="GetEntry"/> took for a present entry.</summary>
    private void PutEntry(int level, ulong entry)
    {
        if ((entry & PvPte.Present) == 0)
        {
            return;
        }

        ulong mfn = PvPte.Frame(entry);
        if (level > 1 || (entry & PvPte.Writable) != 0)
        {
            PutType(mfn);
        }

        _frames[mfn].ReferenceCount--;
    }

    /// <summary>mod_lN_entry: replaces one entry of a validated table, new references first, then the old ones released.</summary>
    private int ModifyEntry(int level, ulong tableMfn, int slot, ulong value, bool preserveAccessedDirty)
    {
        if (level == 4 && PvPte.IsHypervisorL4Slot(slot))
        {
            return Refuse(XenErrno.EINVAL, "hypervisor-slot", $"L4 update in Xen's slot {slot}");
        }

        ulong old = ReadEntry(tableMfn, slot);
        if (level == 1 && (old & (PvPte.Present | PvPte.GrantMapped)) == (PvPte.Present | PvPte.GrantMapped))
        {
            // Xen's put_page_from_l1e crashes a domain that implicitly unmaps a granted PTE; only
            // GNTTABOP_unmap_grant_ref may change it here, so the map's accounting stays whole.
            return Refuse(XenErrno.EINVAL, "granted-pte", $"L1 entry {slot} of machine frame 0x{tableMfn:x} is a grant map: only unmap_grant_ref may change it");
        }

        if ((value & PvPte.Present) != 0)
        {
            if ((value & PvPte.DisallowMask(level)) != 0)
            {
                return Refuse(XenErrno.EINVAL, "bad-flags", $"L{level} entry 0x{value:x} has disallowed flags 0x{value & PvPte.DisallowMask(level):x}");
            }

            value = PvPte.Adjust(level, value);
            if (preserveAccessedDirty)
            {
                value |= old & (PvPte.Accessed | PvPte.Dirty);
            }

            // Same frame, same presence and writability: the references held stay right (Xen's fast path).
            const ulong counted = PvPte.FrameMask | PvPte.Present | PvPte.Writable;
            if ((old & counted) != (value & counted))
            {
                int rc = GetEntry(level, value);
                if (rc != 0)
                {
                    return Refuse(-rc, $"l{level}-entry", $"L{level} entry 0x{value:x} in machine frame 0x{tableMfn:x} refused: -{-rc}");
                }

                WriteEntry(tableMfn, slot, value);
                PutEntry(level, old);
                Counters.Increment("pv-pt-updates");
                return 0;
            }
        }
        else if ((old & PvPte.Present) != 0)
        {
            WriteEntry(tableMfn, slot, value);
            PutEntry(level, old);
            Counters.Increment("pv-pt-updates");
            return 0;
        }

        WriteEntry(tableMfn, slot, value);
        Counters.Increment("pv-pt-updates");
        return 0;
    }

    /// <summary>Finds the L1 table mapping <paramref name="linearAddress"/> under the L4 <paramref name="l4Mfn"/> (Xen's guest_map_l1e).</summary>
    private bool TryFindL1(ulong l4Mfn, ulong linearAddress, out ulong l1Mfn, out string why)
    {
        l1Mfn = 0;
        ulong canonical = (ulong)((long)(linearAddress << 16) >> 16);
        int l4Slot = (int)((linearAddress >> 39) & 511);
        if (canonical != linearAddress || PvPte.IsHypervisorL4Slot(l4Slot))
        {
            why = "not a guest address";
            return false;
        }

        if (l4Mfn == 0 || !Owns(l4Mfn) || _frames[l4Mfn].Type != PvPageType.L4 || _frames[l4Mfn].TypeCount == 0)
        {
            why = "no kernel page table";
            return false;
        }

        ulong table = l4Mfn;
        for (int level = 4; level > 1; level--)
        {
            ulong entry = ReadEntry(table, (int)((linearAddress >> (12 + (9 * (level - 1)))) & 511));
            if ((entry & PvPte.Present) == 0)
            {
                why = $"L{level} entry not present";
                return false;
            }

            // Validated tables hold only entries naming the domain's tables of the next level.
            table = PvPte.Frame(entry);
        }

        if (_frames[table].Type != PvPageType.L1 || _frames[table].TypeCount == 0)
        {
            why = "no L1 table";
            return false;
        }

        l1Mfn = table;
        why = string.Empty;
        return true;
    }

    /// <summary>
    /// A hypervisor write at a guest virtual address through the page tables of <paramref name="l4Mfn"/>
    /// (Xen's put_guest for a vCPU that is not running here: the failsafe frame of a vCPU about to
    /// start): every level present and writable, else false and nothing written. A frame mapped
    /// writable by validated tables is never a page table or descriptor page in use.
    /// </summary>
    public bool TryWriteVirtual(ulong l4Mfn, ulong linearAddress, ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            var targets = new List<(ulong Address, int Length)>();
            for (int done = 0; done < bytes.Length;)
            {
                ulong va = linearAddress + (ulong)done;
                if (!TryFindL1(l4Mfn, va, out ulong l1, out _))
                {
                    return false;
                }

                ulong table = l4Mfn;
                for (int level = 4; level > 1; level--)
                {
                    ulong entry = ReadEntry(table, (int)((va >> (12 + (9 * (level - 1)))) & 511));
                    if ((entry & PvPte.Writable) == 0)
                    {
                        return false;
                    }

                    table = PvPte.Frame(entry);
                }

                ulong pte = ReadEntry(l1, (int)((va >> 12) & 511));
                if ((pte & (PvPte.Present | PvPte.Writable)) != (PvPte.Present | PvPte.Writable))
                {
                    return false;
                }

                int length = Math.Min(bytes.Length - done, 4096 - (int)(va & 0xFFF));
                targets.Add(((PvPte.Frame(pte) << 12) + (va & 0xFFF), length));
                done += length;
            }

            int offset = 0;
            foreach ((ulong address, int length) in targets)
            {
                _memory.Write(address, bytes.Slice(offset, length));   // Write tells the write tracker
                offset += length;
            }

            return true;
        }
    }

    private ulong ReadEntry(ulong mfn, int slot) => _memory.Read<ulong>((mfn << 12) + ((ulong)slot << 3));

    private void WriteEntry(ulong mfn, int slot, ulong value)
    {
        ulong address = (mfn << 12) + ((ulong)slot << 3);
        _memory.Write(address, value);
        _memory.NotifyExternalWrite(address, 8);
    }

    private int Refuse(int errno, string reason, string message)
    {
        Counters.Increment("pv-refused");
        Counters.Increment($"pv-refused-{reason}");
        if (_log is not null && Interlocked.Increment(ref _logged) <= 20)
        {
            _log($"xen-pv: {message}");
        }

        return -errno;
    }
}
