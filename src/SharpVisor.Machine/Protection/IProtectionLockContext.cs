namespace SharpVisor.Machine.Protection;

/// <summary>
/// The vCPU that entered user mode, as the monitor sees it while deciding to lock: its control
/// registers, the MSRs that can be pinned, the IDT, and a side-effect-free walk of its page tables.
/// </summary>
public interface IProtectionLockContext
{
    int VcpuId { get; }

    ulong Cr0 { get; }

    ulong Cr3 { get; }

    ulong Cr4 { get; }

    ulong Efer { get; }

    ulong Lstar { get; }

    ulong SysenterEip { get; }

    ulong IdtBase { get; }

    ushort IdtLimit { get; }

    /// <summary>
    /// Walks the current page tables for a supervisor access to <paramref name="linear"/> without
    /// setting accessed/dirty bits: the guest-physical address and whether the mapping is writable.
    /// </summary>
    bool TryTranslate(ulong linear, out ulong physicalAddress, out bool writable);
}
