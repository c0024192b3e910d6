using SharpVisor.Machine.Snapshots;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Pci;

/// <summary>
/// A single-function PCI device with a type 0 header: identity, command/status, memory BARs
/// with sizing and re-programming, a capabilities list, and the INTx pin. Subclasses serve
/// their BARs and add capabilities; the <see cref="PciBus"/> places BARs and maps them.
/// </summary>
public abstract class PciDevice : ISnapshotable
{
    public const int MaxBars = 6;

    private readonly PciBar?[] _bars = new PciBar?[MaxBars];
    private readonly object _configLock = new();
    private volatile bool _intxStatus;
    private int _lastCapability;
    private int _nextCapability = 0x40;

    protected PciDevice(string name, PciDeviceId id)
    {
        Name = name;
        Config.SetUInt16(PciConfigSpace.VendorId, id.VendorId);
        Config.SetUInt16(PciConfigSpace.DeviceId, id.DeviceId);
        Config.SetByte(PciConfigSpace.RevisionId, id.RevisionId);
        Config.SetByte(PciConfigSpace.ProgIf, id.ProgIf);
        Config.SetByte(PciConfigSpace.SubClass, id.SubClass);
        Config.SetByte(PciConfigSpace.ClassCode, id.ClassCode);
        Config.SetUInt16(PciConfigSpace.SubsystemVendorId, id.SubsystemVendorId);
        Config.SetUInt16(PciConfigSpace.SubsystemId, id.SubsystemId);

        Config.SetWritable(PciConfigSpace.Command, 2,
            PciConfigSpace.CommandIoSpace | PciConfigSpace.CommandMemorySpace | PciConfigSpace.CommandBusMaster |
            (1 << 6) | (1 << 8) | PciConfigSpace.CommandIntxDisable);

        // Error bits of the status register: detected parity error, signalled system error,
        // received master/target abort, signalled target abort, master data parity error.
        Config.SetWriteOneToClear(PciConfigSpace.Status, 2, 0xF900);
        Config.SetWritable(PciConfigSpace.CacheLineSize, 1, 0xFF);
        Config.SetWritable(PciConfigSpace.LatencyTimer, 1, 0xFF);
        Config.SetWritable(PciConfigSpace.InterruptLine, 1, 0xFF);
    }

    public string Name { get; }

    public PciConfigSpace Config { get; } = new();

    /// <summary>The bus this function sits on, once attached.</summary>
    public PciBus? Bus { get; internal set; }

    /// <summary>Device number on bus 0 (function is always 0), or -1 before attaching.</summary>
    public int Slot { get; internal set; } = -1;

    public IEnumerable<PciBar> Bars => _bars.Where(b => b is not null)!;

    public ushort Command => Config.ReadUInt16(PciConfigSpace.Command);

    public bool MemoryDecodeEnabled => (Command & PciConfigSpace.CommandMemorySpace) != 0;

    public bool BusMasterEnabled => (Command & PciConfigSpace.CommandBusMaster) != 0;

    /// <summary>1 for INTA# .. 4 for INTD#, 0 for none.</summary>
    public byte InterruptPin => Config.ReadByte(PciConfigSpace.InterruptPin);

    /// <summary>Raised after the bus maps a BAR at a new address (or unmaps it): ioeventfds follow BARs.</summary>
    public event Action<PciBar>? BarMappingChanged;

    public PciBar? GetBar(int index) => (uint)index < MaxBars ? _bars[index] : null;

    public void ReadConfig(int offset, Span<byte> data)
    {
        lock (_configLock)
        {
            OnConfigRead(offset, data.Length);
            Config.Read(offset, data);
        }

        // The Interrupt Status bit lives outside the register file (see SetIntx).
        int status = PciConfigSpace.Status - offset;
        if ((uint)status < (uint)data.Length)
        {
            data[status] = (byte)(_intxStatus ? data[status] | PciConfigSpace.StatusInterrupt : data[status] & ~PciConfigSpace.StatusInterrupt);
        }
    }

    public void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        bool commandChanged = false;
        bool barChanged = false;
        lock (_configLock)
        {
            ushort oldCommand = Command;
            for (int i = 0; i < data.Length; i++)
            {
                int o = offset + i;
                if (o >= PciConfigSpace.Bar0 && o < PciConfigSpace.Bar0 + (4 * MaxBars))
                {
                    barChanged |= WriteBarRegisterByte(o, data[i]);
                }
                else
                {
                    Config.GuestWrite(o, data.Slice(i, 1));
                }
            }

            commandChanged = Command != oldCommand;
            OnConfigWritten(offset, data.Length);
        }

        if (commandChanged || barChanged)
        {
            Bus?.RefreshMappings(this);
        }
    }

    /// <summary>Serves an access to BAR <paramref name="index"/> at <paramref name="offset"/> inside it.</summary>
    public abstract void ReadBar(int index, ulong offset, Span<byte> data);

    public abstract void WriteBar(int index, ulong offset, ReadOnlySpan<byte> data);

    /// <summary>
    /// Drives INTx# (ignored while the guest set Interrupt Disable in the command register).
    /// Called from device threads, so it does not take the config lock (which may be held while
    /// a config access reaches into the device); the Interrupt Status bit it sets is a field of
    /// its own, merged into config reads, so it never races the guest's writes to the register file.
    /// </summary>
    public void SetIntx(bool asserted)
    {
        bool effective = asserted && (Command & PciConfigSpace.CommandIntxDisable) == 0;
        _intxStatus = asserted;
        Bus?.SetIntx(this, effective);
    }

    /// <summary>The Interrupt Status bit of the status register: this function's INTx# is asserted.</summary>
    public bool IntxStatus => _intxStatus;

    /// <summary>Called under the config lock before a guest config read, for registers computed on demand.</summary>
    protected virtual void OnConfigRead(int offset, int length)
    {
    }

    /// <summary>Called under the config lock after a guest config write, for capability registers.</summary>
    protected virtual void OnConfigWritten(int offset, int length)
    {
    }

    /// <summary>Declares a memory BAR; its register reads back the size mask after an all-ones write.</summary>
    protected PciBar AddMemoryBar(int index, ulong size, bool is64Bit, bool prefetchable = false)
    {
        if ((uint)index >= MaxBars || (is64Bit && index == MaxBars - 1))
        {
            throw new ArgumentOutOfRangeException(nameof(index), $"BAR {index} does not fit a type 0 header");
        }

        if (size < 4096 || (size & (size - 1)) != 0 || (!is64Bit && size > 1UL << 31))
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"BAR size 0x{size:x} must be a power of two of at least 4 KiB");
        }

        if (_bars[index] is not null || (is64Bit && _bars[index + 1] is not null) || (index > 0 && _bars[index - 1] is { Is64Bit: true }))
        {
            throw new InvalidOperationException($"BAR {index} of {Name} is already declared");
        }

        var bar = new PciBar(this, index, size, is64Bit, prefetchable);
        _bars[index] = bar;
        Config.SetUInt32(PciConfigSpace.Bar0 + (4 * index), bar.TypeBits);
        return bar;
    }

    /// <summary>
    /// Reserves <paramref name="length"/> bytes (including the ID and next-pointer bytes) for a
    /// capability, links it into the list and returns its offset in configuration space.
    /// </summary>
    protected int AddCapability(byte capabilityId, int length)
    {
        int offset = _nextCapability;
        if (length < 2 || offset + length > PciConfigSpace.Size)
        {
            throw new InvalidOperationException($"capability 0x{capabilityId:x2} of {Name} does not fit in configuration space");
        }

        Config.SetByte(offset, capabilityId);
        Config.SetByte(offset + 1, 0);
        if (_lastCapability == 0)
        {
            Config.SetByte(PciConfigSpace.CapabilitiesPointer, (byte)offset);
            Config.SetUInt16(PciConfigSpace.Status, (ushort)(Config.ReadUInt16(PciConfigSpace.Status) | PciConfigSpace.StatusCapabilitiesList));
        }
        else
        {
            Config.SetByte(_lastCapability + 1, (byte)offset);
        }

        _lastCapability = offset;
        _nextCapability = (offset + length + 3) & ~3;
        return offset;
    }

    /// <summary>The VMM's placement of a BAR (before the guest runs, or when re-placing).</summary>
    internal void SetBarAddress(PciBar bar, ulong address)
    {
        lock (_configLock)
        {
            int register = PciConfigSpace.Bar0 + (4 * bar.Index);
            Config.SetUInt32(register, (uint)address | bar.TypeBits);
            if (bar.Is64Bit)
            {
                Config.SetUInt32(register + 4, (uint)(address >> 32));
            }

            bar.Address = address;
        }
    }

    internal void RaiseBarMappingChanged(PciBar bar) => BarMappingChanged?.Invoke(bar);

    /// <summary>A guest byte write to the BAR area: address bits below the size read back as zero.</summary>
    private bool WriteBarRegisterByte(int configOffset, byte value)
    {
        int registerIndex = (configOffset - PciConfigSpace.Bar0) / 4;
        int byteInRegister = (configOffset - PciConfigSpace.Bar0) % 4;
        PciBar? bar = _bars[registerIndex];
        bool upperHalf = false;
        if (bar is null && registerIndex > 0 && _bars[registerIndex - 1] is { Is64Bit: true } lower)
        {
            bar = lower;
            upperHalf = true;
        }

        if (bar is null)
        {
            return false;
        }

        int register = PciConfigSpace.Bar0 + (4 * registerIndex);
        uint current = Config.ReadUInt32(register);
        uint merged = (current & ~(0xFFu << (8 * byteInRegister))) | ((uint)value << (8 * byteInRegister));
        ulong sizeMask = ~(bar.Size - 1);
        uint stored = upperHalf
            ? merged & (uint)(sizeMask >> 32)
            : (merged & (uint)sizeMask & 0xFFFF_FFF0u) | bar.TypeBits;
        Config.SetUInt32(register, stored);

        int lowRegister = PciConfigSpace.Bar0 + (4 * bar.Index);
        ulong address = Config.ReadUInt32(lowRegister) & 0xFFFF_FFF0u;
        if (bar.Is64Bit)
        {
            address |= (ulong)Config.ReadUInt32(lowRegister + 4) << 32;
        }

        bool changed = address != bar.Address;
        bar.Address = address;
        return changed;
    }

    public string SnapshotTag => $"pci-00:{Slot:x2}.0";

    /// <summary>Configuration space (command, BARs, capabilities), then the device's own state.</summary>
    public void SaveState(SnapshotWriter w)
    {
        lock (_configLock)
        {
            Config.Save(w);
        }

        w.Write(_intxStatus);
        SaveDeviceState(w);
    }

    /// <summary>Loads the configuration space and maps the BARs where the guest had put them.</summary>
    public void LoadState(SnapshotReader r)
    {
        lock (_configLock)
        {
            Config.Load(r);
            foreach (PciBar bar in Bars)
            {
                int register = PciConfigSpace.Bar0 + (4 * bar.Index);
                ulong address = Config.ReadUInt32(register) & 0xFFFF_FFF0u;
                if (bar.Is64Bit)
                {
                    address |= (ulong)Config.ReadUInt32(register + 4) << 32;
                }

                if ((address & (bar.Size - 1)) != 0)
                {
                    throw r.Invalid($"BAR {bar.Index} at 0x{address:x} is not aligned to its size 0x{bar.Size:x}");
                }

                bar.Address = address;
            }
        }

        _intxStatus = r.ReadBoolean();
        LoadDeviceState(r);
        Bus?.RefreshMappings(this);
    }

    protected virtual void SaveDeviceState(SnapshotWriter w)
    {
    }

    protected virtual void LoadDeviceState(SnapshotReader r)
    {
    }
}
