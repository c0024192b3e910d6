using SharpVisor.Machine.Protection;

namespace SharpVisor.Emulator.Mmu;

/// <summary>
/// The outcome of translating one linear address: a host pointer into guest RAM, a
/// guest-physical address for the MMIO bus, or a page fault.
/// </summary>
public readonly struct Translation
{
    private Translation(TranslationStatus status, ulong physicalAddress, nint hostAddress, PageFault fault, bool writeTracked, ProtectionViolationKind? violation = null, bool writeFiltered = false)
    {
        Violation = violation;
        WriteFiltered = writeFiltered;
        Status = status;
        PhysicalAddress = physicalAddress;
        HostAddress = hostAddress;
        Fault = fault;
        WriteTracked = writeTracked;
    }

    public TranslationStatus Status { get; }

    /// <summary>The guest-physical address of the linear address (not for page faults).</summary>
    public ulong PhysicalAddress { get; }

    /// <summary>The host address of the linear address (RAM only).</summary>
    public nint HostAddress { get; }

    /// <summary>The #PF to raise (page faults only).</summary>
    public PageFault Fault { get; }

    /// <summary>
    /// A write to a page the shadow MMU write-tracks (it holds guest page-table entries): after
    /// storing, the CPU must call <see cref="IMmu.OnGuestPhysicalWrite"/> with the address and length.
    /// </summary>
    public bool WriteTracked { get; }

    /// <summary>
    /// The access broke the guest's locked kernel (<see cref="IMmu.Protection"/>): the CPU reports it
    /// with the guest RIP. A page fault when the protection enforces, RAM in log mode.
    /// </summary>
    public ProtectionViolationKind? Violation { get; }

    /// <summary>
    /// A write to a frame holding a locked GDT (<see cref="ProtectionMap.AllowsDescriptorTableStore"/>):
    /// the CPU checks the bytes before it stores them. Such frames never get TLB write tags.
    /// </summary>
    public bool WriteFiltered { get; }

    public bool IsRam => Status == TranslationStatus.Ram;

    public bool IsMmio => Status == TranslationStatus.Mmio;

    public bool IsPageFault => Status == TranslationStatus.PageFault;

    public static Translation Ram(ulong physicalAddress, nint hostAddress, bool writeTracked = false, ProtectionViolationKind? violation = null, bool writeFiltered = false) =>
        new(TranslationStatus.Ram, physicalAddress, hostAddress, default, writeTracked, violation, writeFiltered);

    public static Translation Mmio(ulong physicalAddress) =>
        new(TranslationStatus.Mmio, physicalAddress, 0, default, false);

    public static Translation PageFaulted(PageFaultErrorCode errorCode, ulong linear, ProtectionViolationKind? violation = null) =>
        new(TranslationStatus.PageFault, 0, 0, new PageFault(errorCode, linear), false, violation);

    public override string ToString() => Status switch
    {
        TranslationStatus.Ram => $"RAM 0x{PhysicalAddress:x}{(WriteTracked ? " (tracked)" : "")}",
        TranslationStatus.Mmio => $"MMIO 0x{PhysicalAddress:x}",
        _ => Fault.ToString(),
    };
}
