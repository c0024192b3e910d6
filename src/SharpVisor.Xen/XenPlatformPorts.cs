using System.Buffers.Binary;
using SharpVisor.Machine;

namespace SharpVisor.Xen;

/// <summary>
/// The Xen platform device's fixed I/O ports 0x10-0x13 (the "unplug protocol" of an HVM domain):
/// a 16-bit read of 0x10 gives the magic 0x49D2, an 8-bit read of 0x12 the protocol version (1);
/// the guest writes its product number (16 bits at 0x12) and driver build (32 bits at 0x10), then
/// the mask of emulated devices to unplug (16 bits at 0x10: 1 IDE disks, 2 NICs, 4 auxiliary IDE
/// disks). Linux's PV drivers bind only after a successful unplug. Every guest value is just
/// recorded: nothing here can fail.
/// </summary>
public sealed class XenPlatformPorts : IPortIoDevice
{
    public const ushort BasePort = 0x10;
    public const ushort PortCount = 4;
    public const ushort Magic = 0x49D2;
    public const byte ProtocolVersion = 1;

    public const int UnplugIdeDisks = 1;
    public const int UnplugNics = 2;
    public const int UnplugAuxIdeDisks = 4;

    private readonly Action<string>? _log;
    private int _unplugMask = -1;
    private int _productNumber = -1;
    private long _driverVersion = -1;

    public XenPlatformPorts(Action<string>? log = null) => _log = log;

    /// <summary>Raised (on the vCPU's thread) with the mask the guest wrote to the unplug port.</summary>
    public event Action<int>? Unplugged;

    /// <summary>The last unplug mask the guest wrote, or -1 while it has not unplugged.</summary>
    public int UnplugMask => Volatile.Read(ref _unplugMask);

    /// <summary>The product number the guest's driver announced (Linux: 3), or -1.</summary>
    public int ProductNumber => Volatile.Read(ref _productNumber);

    /// <summary>The driver build the guest announced, or -1.</summary>
    public long DriverVersion => Volatile.Read(ref _driverVersion);

    public void Read(ushort offset, Span<byte> data)
    {
        data.Fill(0xFF);
        if (offset == 0 && data.Length == 2)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(data, Magic);
        }
        else if (offset == 2 && data.Length == 1)
        {
            data[0] = ProtocolVersion;
        }
    }

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        if (offset == 0 && data.Length == 2)
        {
            int mask = BinaryPrimitives.ReadUInt16LittleEndian(data);
            if (Interlocked.Exchange(ref _unplugMask, mask) == -1)
            {
                // Once: a guest writing the port in a loop must not flood the log.
                _log?.Invoke($"xen platform: the guest unplugged emulated devices, mask 0x{mask:x}");
            }

            Unplugged?.Invoke(mask);
        }
        else if (offset == 2 && data.Length == 2)
        {
            Volatile.Write(ref _productNumber, BinaryPrimitives.ReadUInt16LittleEndian(data));
        }
        else if (offset == 0 && data.Length == 4)
        {
            Volatile.Write(ref _driverVersion, BinaryPrimitives.ReadUInt32LittleEndian(data));
        }
    }
}
