using SharpVisor.Machine.Protection;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// A vCPU's memory-management unit: translates linear addresses under the guest's paging mode,
/// keeps a software TLB for the CPU's inline fast path, and follows the control-register
/// writes and invalidations the CPU executes. One instance per vCPU, used by its thread only
/// (other vCPUs only revoke its TLB's write tags, through the machine's <see cref="WriteTracker"/>);
/// a domain chooses the implementation (<see cref="MmuMode"/>).
/// </summary>
public interface IMmu
{
    MmuMode Mode { get; }

    PagingMode PagingMode { get; }

    /// <summary>The TLB the CPU checks inline before calling <see cref="Translate"/>.</summary>
    SoftTlb Tlb { get; }

    MmuCounters Counters { get; }

    /// <summary>The processor features the MMU models (MAXPHYADDR, 1 GiB pages): CPUID must report the same.</summary>
    MmuOptions Options { get; }

    /// <summary>
    /// Translates <paramref name="linear"/> for <paramref name="access"/> to a host pointer into
    /// RAM, a guest-physical MMIO address, or a #PF (error code and CR2). Fills the TLB.
    /// </summary>
    Translation Translate(ulong linear, PageAccess access);

    /// <summary>Sets every paging control register at once (reset, state restore): drops all cached translations.</summary>
    /// <returns>False when PAE paging's PDPTEs are invalid (#GP); nothing changes then.</returns>
    bool LoadControlRegisters(ulong cr0, ulong cr3, ulong cr4, ulong efer);

    /// <summary>MOV to CR0. False: #GP (invalid PDPTEs); nothing changes.</summary>
    bool OnCr0Write(ulong cr0);

    /// <summary>MOV to CR3: flushes non-global translations. False: #GP (invalid PDPTEs); nothing changes.</summary>
    bool OnCr3Write(ulong cr3);

    /// <summary>MOV to CR4. False: #GP (invalid PDPTEs, or CR4.LA57 which this MMU does not support); nothing changes.</summary>
    bool OnCr4Write(ulong cr4);

    /// <summary>WRMSR to EFER (and the CPU's own LMA updates). False: #GP (invalid PDPTEs); nothing changes.</summary>
    bool OnEferWrite(ulong efer);

    /// <summary>INVLPG (and INVPCID individual-address): drops the translation of the page, global or not.</summary>
    void FlushPage(ulong linear);

    /// <summary>Drops every TLB translation, global ones included (INVPCID all-context and the like).</summary>
    void FlushAll();

    /// <summary>Drops every cached translation and shadow table: after guest memory is remapped or a snapshot restored.</summary>
    void Reset();

    /// <summary>This vCPU's part in the machine's write tracking (frames holding decoded code or shadowed tables).</summary>
    WriteTrackerMember Tracking { get; }

    /// <summary>
    /// The domain's kernel protection (null: none). Once locked, stores to its frames fault (#PF,
    /// present + write) or, in log mode, are reported; supervisor fetches outside its executable
    /// ranges fault likewise; TLB fills never grant what it forbids. The vCPU flushes its TLB when
    /// the map's generation changes.
    /// </summary>
    ProtectionMap? Protection { get; set; }

    /// <summary>Whether stores to this guest-physical page must be reported: some vCPU of the machine write-tracks it.</summary>
    bool IsWriteTracked(ulong physicalAddress);

    /// <summary>
    /// Reports a completed store to guest-physical memory that bypassed the TLB's write tags
    /// (see <see cref="Translation.WriteTracked"/>): the shadow MMU drops what it derived from
    /// the entries written. Cheap for untracked pages.
    /// </summary>
    void OnGuestPhysicalWrite(ulong physicalAddress, int length);

    /// <summary>
    /// A store may have reached this tracked frame unreported (another vCPU's, racing with the
    /// start of tracking): drop whatever this MMU derived from entries that differ from memory.
    /// </summary>
    void RecheckFrame(ulong frame);
}
