using SharpVisor.Machine;
using SharpVisor.Machine.Protection;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// What the shadow and nested MMUs share: the control-register state and the flushes its
/// changes imply, the software TLB and how it is filled, and the paging-off identity mapping.
/// Subclasses supply the TLB-miss path and how a guest-physical page reaches the host.
/// </summary>
public abstract class MmuBase : IMmu
{
    private const ulong Cr0CacheDisable = 1UL << 30;
    private const ulong Cr0NotWriteThrough = 1UL << 29;

    // CR4 bits whose change drops global translations too (SDM 4.10.4.1); SMAP because the TLB caches its verdicts.
    private const ulong Cr4FlushAllBits = VcpuState.Cr4Pge | PageWalker.Cr4Pcide | PageWalker.Cr4Smep | PageWalker.Cr4Smap;

    // Changes that make PAE paging reload its PDPTEs (SDM 4.4.1).
    private const ulong Cr0PdpteBits = VcpuState.Cr0Paging | Cr0CacheDisable | Cr0NotWriteThrough;
    private const ulong Cr4PdpteBits = VcpuState.Cr4Pae | VcpuState.Cr4Pge | PageWalker.Cr4Pse | PageWalker.Cr4Smep;

    /// <summary>The error-code bits of the #PF a kernel-protection violation raises (with W or I/D and U added).</summary>
    public const PageFaultErrorCode ProtectionFaultCode = PageFaultErrorCode.Present | PageFaultErrorCode.ReservedBit;

    private readonly ulong[] _pdptes = new ulong[4];

    /// <param name="tracker">The machine's write tracker (shared by its vCPUs); null: one of its own (a lone CPU).</param>
    protected MmuBase(GuestMemory memory, MmuOptions? options, WriteTracker? tracker = null)
    {
        options ??= MmuOptions.Default;
        options.Validate();
        Memory = memory;
        Options = options;
        Walker = new PageWalker(options) { DirtyLog = memory.DirtyLog };
        // With a dirty log, other threads revoke write tags at every fetch (WriteTracker.RevokeAllWriteAccess).
        Tlb = new SoftTlb(options.TlbSlots) { Shared = memory.DirtyLog is not null };
        Tracking = (tracker ?? new WriteTracker(memory)).Join(Tlb);
    }

    public abstract MmuMode Mode { get; }

    public PagingMode PagingMode => Walker.Mode;

    public SoftTlb Tlb { get; }

    public MmuCounters Counters { get; } = new();

    public WriteTrackerMember Tracking { get; }

    public ProtectionMap? Protection { get; set; }

    /// <summary>The paging state and the walk over it.</summary>
    public PageWalker Walker { get; }

    protected GuestMemory Memory { get; }

    public MmuOptions Options { get; }

    public Translation Translate(ulong linear, PageAccess access)
    {
        Counters.Translations++;
        if (Tlb.TryLookup(linear, access, out nint host, out ulong physical))
        {
            Counters.TlbHits++;
            return Translation.Ram(physical, host);
        }

        if (Walker.Mode == PagingMode.Disabled)
        {
            return Complete(linear, access, linear, PageRights.All | PageRights.Dirty, 4096, pagingEnabled: false);
        }

        return TranslateMiss(linear, access);
    }

    public bool LoadControlRegisters(ulong cr0, ulong cr3, ulong cr4, ulong efer) => Apply(cr0, cr3, cr4, efer, cr3Load: true, load: true);

    public bool OnCr0Write(ulong cr0) => Apply(cr0, Walker.Cr3, Walker.Cr4, Walker.Efer, cr3Load: false, load: false);

    public bool OnCr3Write(ulong cr3) => Apply(Walker.Cr0, cr3, Walker.Cr4, Walker.Efer, cr3Load: true, load: false);

    public bool OnCr4Write(ulong cr4) => Apply(Walker.Cr0, Walker.Cr3, cr4, Walker.Efer, cr3Load: false, load: false);

    public bool OnEferWrite(ulong efer) => Apply(Walker.Cr0, Walker.Cr3, Walker.Cr4, efer, cr3Load: false, load: false);

    public void FlushPage(ulong linear)
    {
        Counters.PageInvalidations++;
        OnFlushPage(linear);
        Tlb.FlushPage(linear);
    }

    public void FlushAll()
    {
        Counters.TlbFlushes++;
        Tlb.Flush(includeGlobal: true);
    }

    public void Reset()
    {
        Counters.TlbFlushes++;
        Tlb.Flush(includeGlobal: true);
        OnPagingReset();
        OnAddressSpaceChanged();
    }

    /// <summary>
    /// Walks the current page tables for a supervisor read of <paramref name="linear"/> without
    /// touching the TLB or any accessed/dirty bit: the guest-physical address and whether the
    /// mapping is writable. For the VMM's own look at the guest (kernel protection's lock).
    /// </summary>
    public bool Probe(ulong linear, out ulong physicalAddress, out bool writable)
    {
        if (Walker.Mode == PagingMode.Disabled)
        {
            physicalAddress = linear;
            writable = true;
            return true;
        }

        var memory = new ProbeTableMemory(Memory);
        if (!Walker.Walk(ref memory, linear, PageAccess.Implicit, out PageWalk walk))
        {
            physicalAddress = 0;
            writable = false;
            return false;
        }

        physicalAddress = walk.PhysicalAddress;
        writable = (walk.Rights & PageRights.Write) != 0;
        return true;
    }

    public bool IsWriteTracked(ulong physicalAddress) => Tracking.IsTracked(physicalAddress);

    public virtual void OnGuestPhysicalWrite(ulong physicalAddress, int length)
    {
    }

    public virtual void RecheckFrame(ulong frame)
    {
    }

    /// <summary>A TLB miss with paging enabled.</summary>
    protected abstract Translation TranslateMiss(ulong linear, PageAccess access);

    /// <summary>Reads PAE paging's PDPTEs for <paramref name="cr3"/> the way this mode reads guest memory.</summary>
    protected abstract bool TryReadPdptes(ulong cr3, Span<ulong> pdptes);

    /// <summary>The host address of a guest-physical RAM page, or 0 when no RAM (of the needed rights) backs it.</summary>
    /// <param name="writable">Whether the guest may write the page.</param>
    protected abstract nint ResolvePage(ulong physicalPage, PageAccess access, out bool writable);

    /// <summary>The paging mode (or something cached translations depend on) changed: drop everything derived from guest tables.</summary>
    protected virtual void OnPagingReset()
    {
    }

    /// <summary>CR3 (or the PDPTEs) now name another address space.</summary>
    protected virtual void OnAddressSpaceChanged()
    {
    }

    /// <summary>INVLPG, before the TLB drops the page.</summary>
    protected virtual void OnFlushPage(ulong linear)
    {
    }

    /// <summary>Finishes a translation whose guest-physical address is known: RAM or MMIO, and the TLB fill.</summary>
    protected Translation Complete(ulong linear, PageAccess access, ulong physical, PageRights rights, ulong pageSize, bool pagingEnabled = true)
    {
        ulong physicalPage = physical & SoftTlb.PageMask;
        nint hostPage = ResolvePage(physicalPage, access, out bool hostWritable);
        bool write = (access & PageAccess.Write) != 0;
        if (hostPage == 0 || (write && !hostWritable))
        {
            Counters.MmioTranslations++;
            return Translation.Mmio(physical);
        }

        PageAccess context = access & (PageAccess.User | PageAccess.Implicit | PageAccess.AlignmentCheck);
        bool canRead = !pagingEnabled || Walker.IsAllowed(rights, context);
        bool canWrite = hostWritable && (rights & PageRights.Dirty) != 0
            && (!pagingEnabled || Walker.IsAllowed(rights, context | PageAccess.Write));
        bool canExecute = !pagingEnabled || Walker.IsAllowed(rights, context | PageAccess.Execute);

        ProtectionViolationKind? violation = null;
        bool filtered = false;
        if (pagingEnabled && Protection is { IsLocked: true } protection)
        {
            // The guest's locked kernel (docs/security.md): checked on the guest-physical page, the
            // second stage in nested mode, after the guest's own walk allowed the access.
            if (protection.IsWriteProtected(physicalPage))
            {
                if (write)
                {
                    violation = ProtectionViolationKind.KernelWrite;
                    if (protection.Enforce)
                    {
                        // #PF present + write + reserved bit: a fault on a mapping the CPU cannot use. Not
                        // plain present + write: the guest's own PTE allows the store, so Linux would take
                        // that for a spurious (stale-TLB) fault and retry it forever; with RSVD it fixes up
                        // (an extable user gets -EFAULT) or oopses the offending task.
                        return Fault(ProtectionFaultCode | PageFaultErrorCode.Write | (PageFaultErrorCode)(uint)(access & PageAccess.User), linear, violation);
                    }
                }

                canWrite = false; // every store comes here
            }
            else if (protection.IsDescriptorTableFrame(physicalPage))
            {
                // A locked GDT: every store comes here and the CPU checks which descriptors it changes.
                canWrite = false;
                filtered = write;
            }

            if ((context & PageAccess.User) == 0 && !protection.IsSupervisorExecutable(linear))
            {
                if ((access & PageAccess.Execute) != 0)
                {
                    violation = ProtectionViolationKind.KernelExecute;
                    if (protection.Enforce)
                    {
                        return Fault(ProtectionFaultCode | PageFaultErrorCode.InstructionFetch, linear, violation);
                    }
                }

                canExecute = false;
            }
        }

        // Stores to write-tracked frames (decoded code, shadowed page tables) must be reported.
        bool tracked = (write || canWrite) && Tracking.IsTracked(physicalPage);
        canWrite &= !tracked;
        TlbContext tlbContext = SoftTlb.ContextFor(access);
        Tlb.Fill(linear, tlbContext, hostPage, physicalPage, canRead, canWrite, canExecute, (rights & PageRights.Global) != 0, pageSize);
        if (canWrite && Tlb.Shared)
        {
            // Another vCPU may have begun tracking the frame since we looked, and scanned this
            // TLB before the tag was in it: look again after the fill (it looks after its mark).
            Interlocked.MemoryBarrier();
            if (Tracking.IsTracked(physicalPage))
            {
                Tlb.RevokeWrite(linear, tlbContext);
                tracked = true;
            }
        }

        if (write || canWrite)
        {
            // The dirty log (docs/snapshot.md): after the fill, so a fetch that clears this mark
            // comes after the tag and revokes it (EmulatorVirtualMachine.FetchDirtyPages).
            Interlocked.MemoryBarrier();
            Memory.DirtyLog?.Mark(physicalPage, MemoryRegion.PageSize);
        }

        return Translation.Ram(physical, hostPage + (nint)(physical & 0xFFF), write && tracked, violation, filtered);
    }

    /// <summary>Records a #PF.</summary>
    protected Translation Fault(PageFaultErrorCode errorCode, ulong linear, ProtectionViolationKind? violation = null)
    {
        Counters.PageFaults++;
        return Translation.PageFaulted(errorCode, linear, violation);
    }

    private bool Apply(ulong cr0, ulong cr3, ulong cr4, ulong efer, bool cr3Load, bool load)
    {
        if ((cr4 & PageWalker.Cr4Pcide) != 0)
        {
            cr3 &= ~(1UL << 63); // the "keep this PCID's entries" hint: every CR3 load flushes here
        }

        PagingMode mode = PageWalker.ModeFor(cr0, cr4, efer);
        if (mode == PagingMode.FourLevel && (cr4 & PageWalker.Cr4La57) != 0)
        {
            return false; // 5-level paging is not supported
        }

        PagingMode oldMode = Walker.Mode;
        ulong cr0Changed = cr0 ^ Walker.Cr0;
        ulong cr4Changed = cr4 ^ Walker.Cr4;
        ulong eferChanged = efer ^ Walker.Efer;
        bool reset = load || mode != oldMode
            || (cr4Changed & PageWalker.Cr4Pse) != 0
            || (eferChanged & VcpuState.EferNoExecute) != 0;
        bool flushAll = reset || (cr0Changed & VcpuState.Cr0WriteProtect) != 0 || (cr4Changed & Cr4FlushAllBits) != 0;

        Walker.Pdptes.CopyTo(_pdptes);
        bool loadPdptes = mode == PagingMode.Pae
            && (reset || cr3Load || (cr0Changed & Cr0PdpteBits) != 0 || (cr4Changed & Cr4PdpteBits) != 0);
        if (loadPdptes && !TryReadPdptes(cr3, _pdptes))
        {
            return false;
        }

        Walker.SetControlRegisters(cr0, cr3, cr4, efer, _pdptes);
        if (reset)
        {
            OnPagingReset();
        }

        if (flushAll || cr3Load)
        {
            Counters.TlbFlushes++;
            Tlb.Flush(includeGlobal: flushAll);
        }

        if (reset || cr3Load || loadPdptes)
        {
            OnAddressSpaceChanged();
        }

        return true;
    }
}
