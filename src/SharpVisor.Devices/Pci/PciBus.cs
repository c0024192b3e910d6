using SharpVisor.Machine;

namespace SharpVisor.Devices.Pci;

/// <summary>
/// PCI bus 0 behind a host bridge. The VMM attaches devices; the bus places their BARs in the
/// windows of its <see cref="PciBusLayout"/> (naturally aligned, first fit, as Firecracker and
/// Cloud Hypervisor do instead of firmware), maps each BAR on the MMIO bus while the function's
/// memory decoding is on, follows the guest when it re-programs a BAR, and ORs the INTx lines
/// that share a GSI.
/// </summary>
public sealed class PciBus
{
    public const int MaxSlots = 32;

    private readonly PciDevice?[] _slots = new PciDevice?[MaxSlots];
    private readonly MmioBus _mmio;
    private readonly object _lock = new();
    private readonly HashSet<PciDevice> _intxAsserted = new();
    private ulong _next32;
    private ulong _next64;

    public PciBus(MmioBus mmio, IInterruptController interrupts, PciBusLayout? layout = null)
    {
        _mmio = mmio;
        Interrupts = interrupts;
        Layout = layout ?? new PciBusLayout();
        _next32 = Layout.Mmio32.Start;
        _next64 = Layout.Mmio64?.Start ?? 0;
        ConfigIo = new PciConfigIo(this);
        HostBridge = new PciHostBridge();
        Attach(HostBridge, 0);
    }

    public PciBusLayout Layout { get; }

    public IInterruptController Interrupts { get; }

    public PciHostBridge HostBridge { get; }

    /// <summary>The port-I/O device to register at 0xCF8 for 8 ports.</summary>
    public PciConfigIo ConfigIo { get; }

    /// <summary>Where the bus reports guest mistakes (a BAR outside the windows, overlapping BARs).</summary>
    public GuestLog? Log { get; set; }

    public IEnumerable<PciDevice> Devices
    {
        get
        {
            lock (_lock)
            {
                return _slots.Where(d => d is not null).ToArray()!;
            }
        }
    }

    public PciDevice? GetDevice(int slot) => (uint)slot < MaxSlots ? _slots[slot] : null;

    /// <summary>Plugs <paramref name="device"/> into a free slot (or the one given), places its BARs and routes INTx.</summary>
    public int Attach(PciDevice device, int? slot = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        lock (_lock)
        {
            if (device.Bus is not null)
            {
                throw new InvalidOperationException($"{device.Name} is already attached to a PCI bus");
            }

            int chosen = slot ?? Array.FindIndex(_slots, s => s is null);
            if (chosen < 0 || chosen >= MaxSlots)
            {
                throw new InvalidOperationException($"no free PCI slot for {device.Name}");
            }

            if (_slots[chosen] is not null)
            {
                throw new InvalidOperationException($"PCI slot {chosen} is taken by {_slots[chosen]!.Name}");
            }

            foreach (PciBar bar in device.Bars)
            {
                device.SetBarAddress(bar, Allocate(bar, device.Name));
            }

            if (device.InterruptPin != 0)
            {
                uint gsi = Layout.IntxGsi(chosen, device.InterruptPin);
                device.Config.SetByte(PciConfigSpace.InterruptLine, (byte)Math.Min(gsi, 0xFFu));
            }

            device.Slot = chosen;
            device.Bus = this;
            _slots[chosen] = device;
            return chosen;
        }
    }

    /// <summary>The GSI that carries the INTx# of <paramref name="device"/>, or null when it has no pin.</summary>
    public uint? IntxGsiOf(PciDevice device) =>
        device.Bus == this && device.InterruptPin != 0 ? Layout.IntxGsi(device.Slot, device.InterruptPin) : null;

    /// <summary>(slot, pin, GSI) of every attached function with an INTx pin: the ACPI _PRT entries.</summary>
    public IReadOnlyList<(int Slot, int Pin, uint Gsi)> IntxRoutes() =>
        Devices.Where(d => d.InterruptPin != 0).Select(d => (d.Slot, (int)d.InterruptPin, Layout.IntxGsi(d.Slot, d.InterruptPin))).ToArray();

    internal void ReadConfig(int slot, int register, Span<byte> data)
    {
        PciDevice? device = GetDevice(slot);
        if (device is null)
        {
            data.Fill(0xFF);
            return;
        }

        device.ReadConfig(register, data);
    }

    internal void WriteConfig(int slot, int register, ReadOnlySpan<byte> data) => GetDevice(slot)?.WriteConfig(register, data);

    /// <summary>Brings the MMIO-bus registrations of <paramref name="device"/>'s BARs in line with its registers.</summary>
    internal void RefreshMappings(PciDevice device)
    {
        var changed = new List<PciBar>();
        lock (_lock)
        {
            foreach (PciBar bar in device.Bars)
            {
                ulong? wanted = device.MemoryDecodeEnabled && bar.Address != 0 ? bar.Address : null;
                if (wanted is ulong w && !InWindow(w, bar.Size))
                {
                    Log?.Write($"pci: {device.Name} BAR{bar.Index} at 0x{w:x}+0x{bar.Size:x} is outside the host bridge windows; not decoded");
                    wanted = null;
                }

                if (wanted == bar.MappedAddress)
                {
                    continue;
                }

                if (bar.MappedAddress is not null)
                {
                    _mmio.Unregister(bar.Region);
                    bar.MappedAddress = null;
                }

                if (wanted is ulong address)
                {
                    try
                    {
                        _mmio.Register(address, bar.Size, bar.Region, $"{device.Name}-bar{bar.Index}");
                        bar.MappedAddress = address;
                    }
                    catch (InvalidOperationException e)
                    {
                        Log?.Write($"pci: {device.Name} BAR{bar.Index} not decoded: {e.Message}");
                    }
                }

                changed.Add(bar);
            }
        }

        foreach (PciBar bar in changed)
        {
            device.RaiseBarMappingChanged(bar);
        }
    }

    internal void SetIntx(PciDevice device, bool asserted)
    {
        uint? gsi = IntxGsiOf(device);
        if (gsi is null)
        {
            return;
        }

        lock (_lock)
        {
            bool lineWasHigh = _intxAsserted.Any(d => IntxGsiOf(d) == gsi);
            if (asserted)
            {
                _intxAsserted.Add(device);
            }
            else
            {
                _intxAsserted.Remove(device);
            }

            bool lineIsHigh = _intxAsserted.Any(d => IntxGsiOf(d) == gsi);
            if (lineIsHigh != lineWasHigh)
            {
                Interrupts.SetIrqLevel(gsi.Value, lineIsHigh);
            }
        }
    }

    private bool InWindow(ulong address, ulong size) =>
        Layout.Mmio32.Contains(address, size) || (Layout.Mmio64 is PciWindow w && w.Contains(address, size));

    private ulong Allocate(PciBar bar, string deviceName)
    {
        // 64-bit BARs also start below 4 GiB: every guest can reach them there, and the guest
        // may still move them to the 64-bit window.
        ulong address = AlignUp(_next32, bar.Size);
        if (address + bar.Size <= Layout.Mmio32.End)
        {
            _next32 = address + bar.Size;
            return address;
        }

        if (bar.Is64Bit && Layout.Mmio64 is PciWindow high)
        {
            address = AlignUp(_next64, bar.Size);
            if (address + bar.Size <= high.End)
            {
                _next64 = address + bar.Size;
                return address;
            }
        }

        throw new InvalidOperationException($"no room for {deviceName} BAR{bar.Index} (0x{bar.Size:x} bytes) in the PCI windows");
    }

    private static ulong AlignUp(ulong value, ulong alignment) => (value + alignment - 1) & ~(alignment - 1);
}
