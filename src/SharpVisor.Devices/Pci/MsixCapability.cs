using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;
using SharpVisor.Interop;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Pci;

/// <summary>
/// MSI-X (PCI 3.0 §6.8.2): a capability in configuration space (message control with enable
/// and function mask, table and PBA locations) and a vector table plus pending-bit array that
/// live in one of the function's BARs. A vector signalled while masked (per vector or for the
/// whole function) sets its pending bit and is delivered when unmasked. Where the interrupt
/// controller offers MSI routes (KVM: irqfd), each vector gets its own and a delivery is one
/// eventfd write; otherwise messages go through <see cref="IInterruptController.SignalMsi"/>.
/// </summary>
public sealed class MsixCapability
{
    public const byte CapabilityId = 0x11;
    public const int CapabilityLength = 12;
    public const int EntrySize = 16;
    public const int MaxVectors = 2048;

    public const ushort ControlEnable = 0x8000;
    public const ushort ControlFunctionMask = 0x4000;

    private const int EntryAddressLow = 0;
    private const int EntryAddressHigh = 4;
    private const int EntryData = 8;
    private const int EntryVectorControl = 12;

    private readonly PciDevice _device;
    private readonly int _capabilityOffset;
    private readonly byte[] _table;
    private readonly ulong[] _pending;
    private readonly IMsiRoute?[] _routes;
    private readonly bool[] _routeAsked;
    private readonly bool[] _refusalLogged;
    private readonly object _lock = new();

    public MsixCapability(PciDevice device, int capabilityOffset, int vectorCount, int bar, uint tableOffset, uint pbaOffset)
    {
        if (vectorCount < 1 || vectorCount > MaxVectors)
        {
            throw new ArgumentOutOfRangeException(nameof(vectorCount));
        }

        if (((tableOffset | pbaOffset) & 7) != 0)
        {
            throw new ArgumentException("MSI-X table and PBA offsets must be 8-byte aligned");
        }

        _device = device;
        _capabilityOffset = capabilityOffset;
        VectorCount = vectorCount;
        Bar = bar;
        TableOffset = tableOffset;
        PbaOffset = pbaOffset;
        _table = new byte[vectorCount * EntrySize];
        _pending = new ulong[(vectorCount + 63) / 64];
        _routes = new IMsiRoute?[vectorCount];
        _routeAsked = new bool[vectorCount];
        _refusalLogged = new bool[vectorCount];
        for (int v = 0; v < vectorCount; v++)
        {
            // Every vector starts masked.
            _table[(v * EntrySize) + EntryVectorControl] = 1;
        }

        PciConfigSpace config = device.Config;
        config.SetUInt16(capabilityOffset + 2, (ushort)(vectorCount - 1));
        config.SetWritable(capabilityOffset + 2, 2, ControlEnable | ControlFunctionMask);
        config.SetUInt32(capabilityOffset + 4, tableOffset | (uint)bar);
        config.SetUInt32(capabilityOffset + 8, pbaOffset | (uint)bar);
    }

    public int VectorCount { get; }

    public int Bar { get; }

    public uint TableOffset { get; }

    public uint PbaOffset { get; }

    public int TableSize => VectorCount * EntrySize;

    public int PbaSize => _pending.Length * 8;

    public ushort MessageControl => _device.Config.ReadUInt16(_capabilityOffset + 2);

    public bool Enabled => (MessageControl & ControlEnable) != 0;

    public bool FunctionMasked => (MessageControl & ControlFunctionMask) != 0;

    /// <summary>True when <paramref name="offset"/> in configuration space is part of this capability.</summary>
    public bool Covers(int offset, int length) => offset < _capabilityOffset + CapabilityLength && _capabilityOffset < offset + length;

    public bool IsMasked(int vector)
    {
        lock (_lock)
        {
            return (_table[(vector * EntrySize) + EntryVectorControl] & 1) != 0;
        }
    }

    public bool IsPending(int vector)
    {
        lock (_lock)
        {
            return (_pending[vector / 64] & (1UL << (vector % 64))) != 0;
        }
    }

    /// <summary>
    /// Signals <paramref name="vector"/>: delivered now, or left pending while masked. Returns
    /// false when MSI-X is disabled or the vector does not exist (the caller may use INTx).
    /// </summary>
    public bool Signal(int vector)
    {
        if (!Enabled || (uint)vector >= (uint)VectorCount)
        {
            return false;
        }

        lock (_lock)
        {
            if (FunctionMasked || (_table[(vector * EntrySize) + EntryVectorControl] & 1) != 0 || !_device.BusMasterEnabled)
            {
                _pending[vector / 64] |= 1UL << (vector % 64);
                return true;
            }

            Deliver(vector);
            return true;
        }
    }

    /// <summary>The device calls this after the guest wrote message control: unmasking delivers pending vectors.</summary>
    public void OnControlWritten()
    {
        lock (_lock)
        {
            DeliverUnmaskedPending();
        }
    }

    public void ReadTable(ulong offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong o = offset + (ulong)i;
                data[i] = o < (ulong)_table.Length ? _table[o] : (byte)0;
            }
        }
    }

    public void WriteTable(ulong offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong o = offset + (ulong)i;
                if (o >= (ulong)_table.Length)
                {
                    break;
                }

                // Only the mask bit of vector control is writable; the rest is reserved.
                _table[o] = (int)(o % EntrySize) == EntryVectorControl ? (byte)(data[i] & 1) :
                    (int)(o % EntrySize) > EntryVectorControl ? (byte)0 : data[i];
            }

            DeliverUnmaskedPending();
        }
    }

    /// <summary>The pending bits are read-only to the guest.</summary>
    public void ReadPba(ulong offset, Span<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                ulong o = offset + (ulong)i;
                data[i] = o < (ulong)PbaSize ? (byte)(_pending[o / 8] >> (int)(8 * (o % 8))) : (byte)0;
            }
        }
    }

    private void DeliverUnmaskedPending()
    {
        if (!Enabled || FunctionMasked || !_device.BusMasterEnabled)
        {
            return;
        }

        for (int word = 0; word < _pending.Length; word++)
        {
            ulong bits = _pending[word];
            while (bits != 0)
            {
                int bit = System.Numerics.BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                int vector = (word * 64) + bit;
                if ((_table[(vector * EntrySize) + EntryVectorControl] & 1) == 0)
                {
                    _pending[word] &= ~(1UL << bit);
                    Deliver(vector);
                }
            }
        }
    }

    private void Deliver(int vector)
    {
        ReadOnlySpan<byte> entry = _table.AsSpan(vector * EntrySize, EntrySize);
        ulong address = BinaryPrimitives.ReadUInt32LittleEndian(entry[EntryAddressLow..]) |
            ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(entry[EntryAddressHigh..]) << 32);
        uint data = BinaryPrimitives.ReadUInt32LittleEndian(entry[EntryData..]);
        PciBus? bus = _device.Bus;
        if (bus is null)
        {
            return;
        }

        try
        {
            if (RouteFor(vector, bus.Interrupts) is IMsiRoute route)
            {
                route.Signal(address, data);
            }
            else
            {
                bus.Interrupts.SignalMsi(address, data);
            }

            _refusalLogged[vector] = false;
        }
        catch (Exception e) when (e is LinuxException or ObjectDisposedException)
        {
            // A message the platform refuses (or a machine going away) is dropped, as on hardware;
            // said once until the vector works again, so a guest cannot flood the log.
            if (!_refusalLogged[vector])
            {
                _refusalLogged[vector] = true;
                bus.Log?.Write($"pci: {_device.Name} MSI-X vector {vector} (address 0x{address:x} data 0x{data:x}) not delivered: {e.Message}");
            }
        }
    }

    /// <summary>The vector's own route, asked for once; null when the controller has none to give.</summary>
    private IMsiRoute? RouteFor(int vector, IInterruptController controller)
    {
        if (!_routeAsked[vector])
        {
            _routeAsked[vector] = true;
            _routes[vector] = (controller as IMsiRouteProvider)?.TryCreateMsiRoute();
        }

        return _routes[vector];
    }

    public void Save(SnapshotWriter w)
    {
        lock (_lock)
        {
            w.WriteBytes(_table);
            w.Write(_pending);
        }
    }

    public void Load(SnapshotReader r)
    {
        lock (_lock)
        {
            r.ReadBytes(_table.Length).CopyTo(_table, 0);
            r.ReadUInt64Array(_pending.Length).CopyTo(_pending, 0);
        }
    }
}
