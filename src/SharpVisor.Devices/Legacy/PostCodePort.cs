using SharpVisor.Machine;

namespace SharpVisor.Devices.Legacy;

/// <summary>
/// Port 0x80, where firmware writes POST codes and Linux's io_delay writes to waste time.
/// Claiming it here keeps those writes cheap; the last code is kept for diagnostics.
/// </summary>
public sealed class PostCodePort : IPortIoDevice
{
    public const ushort DefaultPort = 0x80;

    private int _lastCode = -1;

    /// <summary>The last byte written, or null if the guest never wrote one.</summary>
    public byte? LastCode
    {
        get
        {
            int code = Volatile.Read(ref _lastCode);
            return code < 0 ? null : (byte)code;
        }
    }

    public void Read(ushort offset, Span<byte> data) => data.Fill(0xFF);

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        if (!data.IsEmpty)
        {
            Volatile.Write(ref _lastCode, data[0]);
        }
    }
}
