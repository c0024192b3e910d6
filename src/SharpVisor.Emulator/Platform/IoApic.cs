using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Emulator.Platform;

/// <summary>
/// The 82093AA-style I/O APIC KVM emulates: 24 pins, IOREGSEL/IOWIN at 0xFEC00000, version 0x11,
/// redirection entries with remote IRR for level-triggered pins (cleared by the local APICs' EOI
/// broadcast, then re-delivered if the pin is still asserted). Pin levels are logical (asserted or
/// not), as QEMU and KVM model them; the polarity bit is stored for the guest but not applied.
/// As an <see cref="IInterruptController"/> on its own, GSI n is pin n and MSIs go straight to the
/// APIC bus; <see cref="SoftwareIrqChip"/> adds the 8259 pair in front of it.
/// </summary>
public sealed class IoApic : IMmioDevice, IInterruptController, ISnapshotable
{
    public const ulong DefaultBaseAddress = 0xFEC0_0000;

    /// <summary>The MMIO window registered on the bus (KVM's IOAPIC_MEM_LENGTH).</summary>
    public const ulong MmioSize = 0x100;

    public const int PinCount = 24;

    /// <summary>Version 0x11, maximum redirection entry 23.</summary>
    public const uint VersionValue = 0x0017_0011;

    public const uint RegisterSelectOffset = 0x00;
    public const uint WindowOffset = 0x10;

    public const uint RegisterId = 0x00;
    public const uint RegisterVersion = 0x01;
    public const uint RegisterArbitration = 0x02;
    public const uint RegisterRedirectionBase = 0x10;

    public const ulong EntryMasked = 1UL << 16;
    public const ulong EntryLevelTriggered = 1UL << 15;
    public const ulong EntryRemoteIrr = 1UL << 14;
    public const ulong EntryActiveLow = 1UL << 13;
    public const ulong EntryDeliveryStatus = 1UL << 12;
    public const ulong EntryLogicalDestination = 1UL << 11;

    private const string LogSource = "ioapic";

    // Bits the guest may write: everything except delivery status and remote IRR, and the reserved 17-55.
    private const ulong WritableMask = 0xFF00_0000_0000_0000UL | EntryMasked | EntryLevelTriggered | EntryActiveLow | EntryLogicalDestination | 0x7FF;

    private readonly object _lock = new();
    private readonly ApicBus _bus;
    private readonly PlatformLog _log;
    private readonly ulong[] _redirection = new ulong[PinCount];
    private uint _pinLevels;
    private uint _registerSelect;
    private uint _id;

    public IoApic(ApicBus bus, PlatformLog? log = null)
    {
        _bus = bus;
        _log = log ?? PlatformLog.Null;
        for (int i = 0; i < PinCount; i++)
        {
            _redirection[i] = EntryMasked;
        }
    }

    /// <summary>A pin's redirection entry as the guest programmed it (with remote IRR).</summary>
    public ulong GetRedirectionEntry(int pin)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pin);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(pin, PinCount);
        lock (_lock)
        {
            return _redirection[pin];
        }
    }

    /// <summary>Drives a pin. Edge-triggered pins deliver on a rising edge; level-triggered ones while asserted and not in service.</summary>
    public void SetPin(int pin, bool asserted)
    {
        if ((uint)pin >= PinCount)
        {
            _log.Warn(LogSource, $"no pin {pin}");
            return;
        }

        lock (_lock)
        {
            uint bit = 1u << pin;
            bool wasAsserted = (_pinLevels & bit) != 0;
            _pinLevels = asserted ? _pinLevels | bit : _pinLevels & ~bit;
            if (!asserted)
            {
                return;
            }

            ulong entry = _redirection[pin];
            if ((entry & EntryLevelTriggered) != 0)
            {
                ServiceLevelPinLocked(pin);
            }
            else if (!wasAsserted && (entry & EntryMasked) == 0)
            {
                // An edge on a masked pin is lost, as the 82093AA manual says.
                DeliverLocked(pin, entry);
            }
        }
    }

    public void SetIrqLevel(uint gsi, bool asserted)
    {
        if (gsi >= PinCount)
        {
            _log.Warn(LogSource, $"no GSI {gsi}");
            return;
        }

        SetPin((int)gsi, asserted);
    }

    /// <summary>Decodes an MSI and delivers it on the APIC bus (MSIs bypass the redirection table).</summary>
    public void SignalMsi(ulong address, uint data)
    {
        if (!MsiMessage.TryDecode(address, data, out ApicMessage message, out string? error))
        {
            _log.Warn(LogSource, error!);
            return;
        }

        if (_bus.Deliver(message) == 0)
        {
            _log.Warn(LogSource, $"MSI to destination 0x{message.Destination:x} reached no local APIC");
        }
    }

    /// <summary>A local APIC's EOI for a level-triggered vector: clears remote IRR on the pins using it.</summary>
    public void EndOfInterrupt(int vector)
    {
        lock (_lock)
        {
            for (int pin = 0; pin < PinCount; pin++)
            {
                ulong entry = _redirection[pin];
                if ((int)(entry & 0xFF) != vector || (entry & EntryRemoteIrr) == 0)
                {
                    continue;
                }

                _redirection[pin] = entry & ~EntryRemoteIrr;
                ServiceLevelPinLocked(pin);
            }
        }
    }

    public void Read(ulong offset, Span<byte> data)
    {
        uint value;
        lock (_lock)
        {
            switch (offset & ~3UL)
            {
                case RegisterSelectOffset:
                    value = _registerSelect;
                    break;
                case WindowOffset:
                    value = ReadRegisterLocked(_registerSelect);
                    break;
                default:
                    value = 0;
                    break;
            }
        }

        int shift = (int)(offset & 3) * 8;
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = i + (int)(offset & 3) < 4 ? (byte)(value >> (shift + (8 * i))) : (byte)0;
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if ((offset & 3) != 0 || data.Length < 4)
        {
            // Byte writes to IOREGSEL are common enough (and harmless).
            if (offset == RegisterSelectOffset && data.Length >= 1)
            {
                lock (_lock)
                {
                    _registerSelect = data[0];
                }

                return;
            }

            _log.Warn(LogSource, $"ignoring {data.Length}-byte write at 0x{offset:x}");
            return;
        }

        uint value = (uint)(data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24));
        lock (_lock)
        {
            switch (offset)
            {
                case RegisterSelectOffset:
                    _registerSelect = value & 0xFF;
                    break;
                case WindowOffset:
                    WriteRegisterLocked(_registerSelect, value);
                    break;
                default:
                    _log.Warn(LogSource, $"ignoring write at 0x{offset:x}");
                    break;
            }
        }
    }

    private uint ReadRegisterLocked(uint register)
    {
        switch (register)
        {
            case RegisterId:
            case RegisterArbitration:
                return (_id & 0xF) << 24;
            case RegisterVersion:
                return VersionValue;
            default:
                int index = (int)(register - RegisterRedirectionBase);
                if (register < RegisterRedirectionBase || index >= 2 * PinCount)
                {
                    return 0;
                }

                ulong entry = _redirection[index >> 1];
                return (index & 1) == 0 ? (uint)entry : (uint)(entry >> 32);
        }
    }

    private void WriteRegisterLocked(uint register, uint value)
    {
        if (register == RegisterId)
        {
            _id = (value >> 24) & 0xF;
            return;
        }

        int index = (int)(register - RegisterRedirectionBase);
        if (register < RegisterRedirectionBase || index >= 2 * PinCount)
        {
            // Version and arbitration are read-only.
            return;
        }

        int pin = index >> 1;
        ulong entry = _redirection[pin];
        ulong written = (index & 1) == 0
            ? (entry & 0xFFFF_FFFF_0000_0000UL) | value
            : (entry & 0xFFFF_FFFFUL) | ((ulong)value << 32);
        entry = (written & WritableMask) | (entry & EntryRemoteIrr);
        if ((entry & EntryLevelTriggered) == 0)
        {
            entry &= ~EntryRemoteIrr;
        }

        _redirection[pin] = entry;

        // Unmasking a level-triggered pin that is still asserted delivers it now.
        if ((entry & EntryLevelTriggered) != 0)
        {
            ServiceLevelPinLocked(pin);
        }
    }

    private void ServiceLevelPinLocked(int pin)
    {
        ulong entry = _redirection[pin];
        if ((_pinLevels & (1u << pin)) == 0 || (entry & (EntryMasked | EntryRemoteIrr)) != 0)
        {
            return;
        }

        if (DeliverLocked(pin, entry) > 0 && IsInterruptMode(entry))
        {
            _redirection[pin] = entry | EntryRemoteIrr;
        }
    }

    private static bool IsInterruptMode(ulong entry)
    {
        var mode = (ApicDeliveryMode)((entry >> 8) & 7);
        return mode is ApicDeliveryMode.Fixed or ApicDeliveryMode.LowestPriority;
    }

    private int DeliverLocked(int pin, ulong entry)
    {
        var mode = (ApicDeliveryMode)((entry >> 8) & 7);
        bool level = (entry & EntryLevelTriggered) != 0;
        var message = new ApicMessage(
            (int)(entry & 0xFF),
            mode,
            LogicalDestination: (entry & EntryLogicalDestination) != 0,
            Destination: (uint)(entry >> 56),
            LevelTriggered: level && IsInterruptMode(entry));

        // Local APICs never call back into the I/O APIC while holding their own lock, so delivering under ours is safe.
        int delivered = _bus.Deliver(message);
        if (delivered == 0)
        {
            _log.Warn(LogSource, $"pin {pin}: no local APIC matches destination 0x{entry >> 56:x2}");
        }

        return delivered;
    }

    public string SnapshotTag => "ioapic";

    public void SaveState(SnapshotWriter w)
    {
        lock (_lock)
        {
            w.Write(_redirection);
            w.Write(_pinLevels);
            w.Write(_registerSelect);
            w.Write(_id);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (_lock)
        {
            r.ReadUInt64Array(_redirection.Length).CopyTo(_redirection, 0);
            _pinLevels = r.ReadUInt32();
            _registerSelect = r.ReadUInt32();
            _id = r.ReadUInt32();
        }
    }
}
