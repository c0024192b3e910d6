using SharpVisor.Machine.Snapshots;
using System.Buffers.Binary;

namespace SharpVisor.Devices.Pci;

/// <summary>
/// The 256-byte configuration space of one PCI function (type 0 header plus capabilities).
/// The device sets values freely; the guest's writes pass through a per-bit write mask and a
/// write-one-to-clear mask, so read-only fields stay read-only whatever the guest writes.
/// </summary>
public sealed class PciConfigSpace
{
    public const int Size = 256;

    public const int VendorId = 0x00;
    public const int DeviceId = 0x02;
    public const int Command = 0x04;
    public const int Status = 0x06;
    public const int RevisionId = 0x08;
    public const int ProgIf = 0x09;
    public const int SubClass = 0x0A;
    public const int ClassCode = 0x0B;
    public const int CacheLineSize = 0x0C;
    public const int LatencyTimer = 0x0D;
    public const int HeaderType = 0x0E;
    public const int Bar0 = 0x10;
    public const int SubsystemVendorId = 0x2C;
    public const int SubsystemId = 0x2E;
    public const int ExpansionRom = 0x30;
    public const int CapabilitiesPointer = 0x34;
    public const int InterruptLine = 0x3C;
    public const int InterruptPin = 0x3D;

    public const ushort CommandIoSpace = 1 << 0;
    public const ushort CommandMemorySpace = 1 << 1;
    public const ushort CommandBusMaster = 1 << 2;
    public const ushort CommandIntxDisable = 1 << 10;

    public const ushort StatusInterrupt = 1 << 3;
    public const ushort StatusCapabilitiesList = 1 << 4;

    private readonly byte[] _data = new byte[Size];
    private readonly byte[] _writable = new byte[Size];
    private readonly byte[] _writeOneToClear = new byte[Size];

    public byte ReadByte(int offset) => _data[offset];

    public ushort ReadUInt16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_data.AsSpan(offset));

    public uint ReadUInt32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_data.AsSpan(offset));

    public void SetByte(int offset, byte value) => _data[offset] = value;

    public void SetUInt16(int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(_data.AsSpan(offset), value);

    public void SetUInt32(int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_data.AsSpan(offset), value);

    /// <summary>Marks which bits of a byte range the guest may change (little-endian mask).</summary>
    public void SetWritable(int offset, int length, ulong mask)
    {
        for (int i = 0; i < length; i++)
        {
            _writable[offset + i] = (byte)(mask >> (8 * i));
        }
    }

    /// <summary>Marks bits the guest clears by writing one (status registers).</summary>
    public void SetWriteOneToClear(int offset, int length, ulong mask)
    {
        for (int i = 0; i < length; i++)
        {
            _writeOneToClear[offset + i] = (byte)(mask >> (8 * i));
        }
    }

    /// <summary>Copies out <paramref name="data"/>.Length bytes; bytes beyond the space read as all-ones.</summary>
    public void Read(int offset, Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            int o = offset + i;
            data[i] = (uint)o < Size ? _data[o] : (byte)0xFF;
        }
    }

    /// <summary>A guest write: only writable bits change, write-one-to-clear bits clear.</summary>
    public void GuestWrite(int offset, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            int o = offset + i;
            if ((uint)o >= Size)
            {
                break;
            }

            byte value = data[i];
            byte current = _data[o];
            current = (byte)(current & ~(value & _writeOneToClear[o]));
            current = (byte)((current & ~_writable[o]) | (value & _writable[o]));
            _data[o] = current;
        }
    }

    public void Save(SnapshotWriter w) => w.WriteBytes(_data);

    /// <summary>Loads the register file; the read-only bytes must be the ones this device has (the same device type and layout).</summary>
    public void Load(SnapshotReader r)
    {
        byte[] data = r.ReadBytes(Size);
        for (int i = 0; i < Size; i++)
        {
            byte fixedBits = (byte)~(_writable[i] | _writeOneToClear[i]);
            if (((data[i] ^ _data[i]) & fixedBits) != 0 && (i < Bar0 || i >= Bar0 + 24))
            {
                throw r.Invalid($"PCI configuration byte 0x{i:x2} is 0x{data[i]:x2}, read-only 0x{_data[i]:x2} here: another device");
            }
        }

        data.CopyTo(_data, 0);
    }
}
