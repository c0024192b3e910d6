using System.Buffers.Binary;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>
/// Plays the guest's PCI core on bus 0: configuration mechanism #1 through ports 0xCF8/0xCFC,
/// enumeration, BAR sizing and programming, as Linux's probe does.
/// </summary>
public sealed class GuestPciBus
{
    public const int Command = 0x04;
    public const ushort CommandMemory = 0x2;
    public const ushort CommandBusMaster = 0x4;
    public const int CapabilitiesPointer = 0x34;
    public const int InterruptLine = 0x3C;
    public const int InterruptPin = 0x3D;

    private readonly PortIoBus _ports;
    private readonly MmioBus _mmio;

    public GuestPciBus(IVirtualMachine machine)
    {
        _ports = machine.PortIo;
        _mmio = machine.Mmio;
    }

    /// <summary>(slot, vendor, device, class, subclass) of every function 0 that answers.</summary>
    public IReadOnlyList<(int Slot, ushort Vendor, ushort Device, byte Class, byte SubClass)> Enumerate()
    {
        var found = new List<(int, ushort, ushort, byte, byte)>();
        for (int slot = 0; slot < 32; slot++)
        {
            uint id = Read32(slot, 0);
            if ((ushort)id == 0xFFFF)
            {
                continue;
            }

            uint classRegister = Read32(slot, 0x08);
            found.Add((slot, (ushort)id, (ushort)(id >> 16), (byte)(classRegister >> 24), (byte)(classRegister >> 16)));
        }

        return found;
    }

    public uint Read32(int slot, int register)
    {
        Select(slot, register);
        Span<byte> data = stackalloc byte[4];
        _ports.Read(0xCFC, data);
        return BinaryPrimitives.ReadUInt32LittleEndian(data);
    }

    public ushort Read16(int slot, int register)
    {
        Select(slot, register);
        Span<byte> data = stackalloc byte[2];
        _ports.Read((ushort)(0xCFC + (register & 2)), data);
        return BinaryPrimitives.ReadUInt16LittleEndian(data);
    }

    public byte Read8(int slot, int register)
    {
        Select(slot, register);
        Span<byte> data = stackalloc byte[1];
        _ports.Read((ushort)(0xCFC + (register & 3)), data);
        return data[0];
    }

    public void Write32(int slot, int register, uint value)
    {
        Select(slot, register);
        Span<byte> data = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(data, value);
        _ports.Write(0xCFC, data);
    }

    public void Write16(int slot, int register, ushort value)
    {
        Select(slot, register);
        Span<byte> data = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(data, value);
        _ports.Write((ushort)(0xCFC + (register & 2)), data);
    }

    /// <summary>
    /// Sizes memory BAR <paramref name="index"/> the way Linux does: decoding off, all-ones
    /// written, the size mask read back, the old value restored. Returns (size, is 64-bit).
    /// </summary>
    public (ulong Size, bool Is64Bit) SizeBar(int slot, int index)
    {
        ushort command = Read16(slot, Command);
        Write16(slot, Command, (ushort)(command & ~CommandMemory));
        int register = 0x10 + (4 * index);
        uint low = Read32(slot, register);
        bool is64 = (low & 0x6) == 0x4;
        Write32(slot, register, 0xFFFF_FFFF);
        ulong mask = Read32(slot, register) & ~0xFu;
        Write32(slot, register, low);
        if (is64)
        {
            uint high = Read32(slot, register + 4);
            Write32(slot, register + 4, 0xFFFF_FFFF);
            mask |= (ulong)Read32(slot, register + 4) << 32;
            Write32(slot, register + 4, high);
        }
        else
        {
            mask |= 0xFFFF_FFFF_0000_0000;
        }

        Write16(slot, Command, command);
        return (~mask + 1, is64);
    }

    public ulong BarAddress(int slot, int index)
    {
        int register = 0x10 + (4 * index);
        uint low = Read32(slot, register);
        ulong address = low & ~0xFu;
        return (low & 0x6) == 0x4 ? address | ((ulong)Read32(slot, register + 4) << 32) : address;
    }

    /// <summary>Moves a memory BAR to <paramref name="address"/> with decoding off, then turns memory decoding and bus mastering on.</summary>
    public void ProgramBar(int slot, int index, ulong address)
    {
        ushort command = Read16(slot, Command);
        Write16(slot, Command, (ushort)(command & ~CommandMemory));
        int register = 0x10 + (4 * index);
        bool is64 = (Read32(slot, register) & 0x6) == 0x4;
        Write32(slot, register, (uint)address);
        if (is64)
        {
            Write32(slot, register + 4, (uint)(address >> 32));
        }

        Write16(slot, Command, (ushort)(command | CommandMemory | CommandBusMaster));
    }

    public void EnableDevice(int slot) =>
        Write16(slot, Command, (ushort)(Read16(slot, Command) | CommandMemory | CommandBusMaster));

    public byte Mmio8(ulong address)
    {
        Span<byte> b = stackalloc byte[1];
        _mmio.Read(address, b);
        return b[0];
    }

    public ushort Mmio16(ulong address)
    {
        Span<byte> b = stackalloc byte[2];
        _mmio.Read(address, b);
        return BinaryPrimitives.ReadUInt16LittleEndian(b);
    }

    public uint Mmio32(ulong address)
    {
        Span<byte> b = stackalloc byte[4];
        _mmio.Read(address, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void MmioWrite8(ulong address, byte value) => _mmio.Write(address, [value]);

    public void MmioWrite16(ulong address, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        _mmio.Write(address, b);
    }

    public void MmioWrite32(ulong address, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _mmio.Write(address, b);
    }

    private void Select(int slot, int register)
    {
        Span<byte> data = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(data, 0x8000_0000u | ((uint)slot << 11) | ((uint)register & 0xFC));
        _ports.Write(0xCF8, data);
    }
}
