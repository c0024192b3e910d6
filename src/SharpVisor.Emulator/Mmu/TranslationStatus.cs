namespace SharpVisor.Emulator.Mmu;

/// <summary>How a linear address resolved.</summary>
public enum TranslationStatus : byte
{
    /// <summary>Guest RAM: the access goes through the host pointer.</summary>
    Ram,

    /// <summary>
    /// Not RAM (an MMIO hole, a PCI BAR, a write to a read-only region): the CPU dispatches the
    /// access at the guest-physical address to the MMIO bus.
    /// </summary>
    Mmio,

    /// <summary>The access faults: the CPU raises #PF with the error code and CR2.</summary>
    PageFault,
}
