using System.Buffers.Binary;
using SharpVisor.Machine;

namespace SharpVisor.Devices.Pci;

/// <summary>
/// Configuration mechanism #1: a 32-bit address register at port 0xCF8 (enable bit 31, bus
/// 23:16, device 15:11, function 10:8, register 7:2) and a data window at 0xCFC-0xCFF.
/// Register it at <see cref="BasePort"/> for <see cref="PortCount"/> ports.
/// </summary>
public sealed class PciConfigIo : IPortIoDevice
{
    public const ushort BasePort = 0xCF8;
    public const ushort PortCount = 8;

    private readonly PciBus _bus;
    private readonly object _lock = new();
    private uint _address;

    public PciConfigIo(PciBus bus)
    {
        _bus = bus;
    }

    public uint Address
    {
        get
        {
            lock (_lock)
            {
                return _address;
            }
        }
    }

    public void Read(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            if (offset == 0 && data.Length == 4)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(data, _address);
                return;
            }

            if (offset >= 4 && TryDecode(offset, data.Length, out int slot, out int register))
            {
                _bus.ReadConfig(slot, register, data);
                return;
            }

            data.Fill(0xFF);
        }
    }

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (offset == 0 && data.Length == 4)
            {
                // Bits 30:24 are reserved and bits 1:0 are always zero.
                _address = BinaryPrimitives.ReadUInt32LittleEndian(data) & 0x80FF_FFFCu;
                return;
            }

            if (offset >= 4 && TryDecode(offset, data.Length, out int slot, out int register))
            {
                _bus.WriteConfig(slot, register, data);
            }
        }
    }

    /// <summary>Decodes the latched address; only bus 0, function 0 exists.</summary>
    private bool TryDecode(ushort offset, int length, out int slot, out int register)
    {
        slot = (int)((_address >> 11) & 0x1F);
        register = (int)(_address & 0xFC) + (offset - 4);
        int bus = (int)((_address >> 16) & 0xFF);
        int function = (int)((_address >> 8) & 0x7);
        return (_address & 0x8000_0000u) != 0 && bus == 0 && function == 0 && (offset - 4) + length <= 4;
    }
}
