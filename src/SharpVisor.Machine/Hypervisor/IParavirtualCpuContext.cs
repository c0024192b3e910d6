namespace SharpVisor.Machine.Hypervisor;

/// <summary>
/// A vCPU as a paravirtualizing hypervisor (Xen PV) drives it: beyond a hypercall's registers and
/// memory, the instruction pointer and flags, segment registers loaded through the descriptor
/// tables, the segment bases, the page-table root, TLB flushes and CPUID.
/// </summary>
public interface IParavirtualCpuContext : IHypercallContext
{
    ulong Rip { get; set; }

    ulong Rflags { get; set; }

    /// <summary>The faulting address of the last #PF.</summary>
    ulong Cr2 { get; }

    /// <summary>CR4 as the processor holds it.</summary>
    ulong Cr4 { get; }

    /// <summary>Loads CR4 through the processor's checks; false when it refuses the value.</summary>
    bool TrySetCr4(ulong value);

    /// <summary>CR0.TS, which fpu_taskswitch sets and CLTS-equivalents clear.</summary>
    bool TaskSwitched { get; set; }

    ushort GetSelector(ParavirtualSegment segment);

    /// <summary>Loads a segment register through the GDT with the architectural checks; false (nothing changed) when they fail.</summary>
    bool TryLoadSegment(ParavirtualSegment segment, ushort selector);

    ulong FsBase { get; set; }

    ulong GsBase { get; set; }

    /// <summary>The other GS base, which SWAPGS exchanges with <see cref="GsBase"/>.</summary>
    ulong KernelGsBase { get; set; }

    /// <summary>Loads CR3 with a machine address (the non-global translations are flushed).</summary>
    void SetPageTableRoot(ulong machineAddress);

    void FlushTlb();

    void FlushTlbPage(ulong linearAddress);

    /// <summary>Points GDTR at a table (a linear address the hypervisor maps).</summary>
    void SetGdt(ulong linearBase, ushort limit);

    /// <summary>What CPUID answers on this vCPU (the model, adjusted by the platform and the hypervisor's leaves).</summary>
    CpuidResult Cpuid(uint leaf, uint subleaf);

    /// <summary>Stops the domain: the guest did something the hypervisor cannot recover from (Xen's domain_crash).</summary>
    void CrashDomain(string reason);
}
