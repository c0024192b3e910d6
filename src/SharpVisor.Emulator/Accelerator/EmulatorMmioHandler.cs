using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// One vCPU's physical accesses that miss RAM: its own local APIC page first (the page is per
/// vCPU and moves with IA32_APIC_BASE), then the machine's MMIO bus. As on KVM, unclaimed reads
/// return all-ones and unclaimed writes are dropped, so every access is handled.
/// </summary>
public sealed class EmulatorMmioHandler : IMmioHandler
{
    private readonly LocalApic _apic;
    private readonly MmioBus _bus;
    private readonly ExitCounters _exits;

    public EmulatorMmioHandler(LocalApic apic, MmioBus bus, ExitCounters exits)
    {
        _apic = apic;
        _bus = bus;
        _exits = exits;
    }

    /// <summary>
    /// Called after each write to this vCPU's local APIC page (EOI, TPR, a self-IPI can make an
    /// interrupt deliverable at once): the vCPU ends its slice after the instruction.
    /// </summary>
    public Action? ApicWritten { get; set; }

    public bool Read(ulong physicalAddress, Span<byte> data)
    {
        if (_apic.IsMmioAddress(physicalAddress))
        {
            _exits.Increment("apic-access");
            _apic.Read(physicalAddress - _apic.MmioBase, data);
            return true;
        }

        _exits.Increment("mmio");
        _bus.Read(physicalAddress, data);
        return true;
    }

    public bool Write(ulong physicalAddress, ReadOnlySpan<byte> data)
    {
        if (_apic.IsMmioAddress(physicalAddress))
        {
            _exits.Increment("apic-access");
            _apic.Write(physicalAddress - _apic.MmioBase, data);
            ApicWritten?.Invoke();
            return true;
        }

        _exits.Increment("mmio");
        _bus.Write(physicalAddress, data);
        return true;
    }
}
