using SharpVisor.Machine;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The interrupt controllers KVM's in-kernel irqchip provides, in software: the 8259 pair, the
/// I/O APIC and one local APIC per vCPU, joined by an <see cref="ApicBus"/>. As the machine's
/// <see cref="IInterruptController"/>, it routes GSIs 0-15 (the ISA IRQs) to both the 8259 pair and
/// the same-numbered I/O APIC pin, as KVM's default routing does (so firmware tables need no
/// interrupt source override for IRQ 0; set <see cref="Irq0IoApicPin"/> to 2 to match tables that
/// have QEMU's override instead), GSIs 16-23 to the I/O APIC only, and MSIs to the local APICs.
/// The 8259's INT output drives every local APIC's LINT0.
/// </summary>
public sealed class SoftwareIrqChip : IInterruptController
{
    private const string LogSource = "irqchip";

    private readonly PlatformLog _log;
    private readonly LocalApic[] _localApics;
    private readonly int _irq0Pin;

    public SoftwareIrqChip(int vcpuCount, PlatformTimeBase time, PlatformLog? log = null, bool x2ApicSupported = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpuCount, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(vcpuCount, 255);
        _log = log ?? PlatformLog.Null;
        Bus = new ApicBus();
        Pic = new Pic8259Pair();
        IoApic = new IoApic(Bus, _log);
        _localApics = new LocalApic[vcpuCount];
        for (int i = 0; i < vcpuCount; i++)
        {
            _localApics[i] = new LocalApic(i, Bus, time, _log, x2ApicSupported: x2ApicSupported);
        }

        Bus.ExternalInterrupts = Pic;
        Bus.EoiListener = IoApic.EndOfInterrupt;
        Pic.OutputChanged = level =>
        {
            foreach (LocalApic apic in _localApics)
            {
                apic.SetLint0(level);
            }
        };
    }

    public ApicBus Bus { get; }

    /// <summary>
    /// The I/O APIC pin ISA IRQ 0 (the PIT) drives: 0 (KVM's default routing) or 2 (QEMU's, for
    /// firmware tables with an IRQ 0 → GSI 2 interrupt source override; pin 0 is then unused).
    /// </summary>
    public int Irq0IoApicPin
    {
        get => _irq0Pin;
        init
        {
            if (value is not (0 or 2))
            {
                throw new ArgumentOutOfRangeException(nameof(Irq0IoApicPin), "IRQ 0 is wired to I/O APIC pin 0 or 2");
            }

            _irq0Pin = value;
        }
    }

    public Pic8259Pair Pic { get; }

    public IoApic IoApic { get; }

    public IReadOnlyList<LocalApic> LocalApics => _localApics;

    public LocalApic GetLocalApic(int vcpu)
    {
        if ((uint)vcpu >= (uint)_localApics.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpu), $"no vCPU {vcpu} (the machine has {_localApics.Length})");
        }

        return _localApics[vcpu];
    }

    /// <summary>Registers the 8259 ports (0x20, 0xA0, ELCR 0x4D0) and the I/O APIC window (0xFEC00000).</summary>
    public void RegisterDevices(PortIoBus ports, MmioBus mmio)
    {
        Pic.RegisterPorts(ports);
        mmio.Register(IoApic.DefaultBaseAddress, IoApic.MmioSize, IoApic, "ioapic");
    }

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        if (gsi >= IoApic.PinCount)
        {
            _log.Warn(LogSource, $"no GSI {gsi}");
            return;
        }

        if (gsi < 16)
        {
            Pic.SetIrq((int)gsi, asserted);
        }

        if (gsi == 0)
        {
            IoApic.SetPin(_irq0Pin, asserted);
        }
        else if (gsi != 2 || _irq0Pin != 2)
        {
            IoApic.SetPin((int)gsi, asserted);
        }
    }

    public void SignalMsi(ulong address, uint data) => IoApic.SignalMsi(address, data);
}
