using System.Runtime.InteropServices;
using SharpVisor.Interop;

namespace SharpVisor.Devices.Tests.Virtio;

/// <summary>
/// An AF_PACKET socket bound to one interface: it sees every frame the kernel receives there
/// (what the guest transmitted into the TAP) and can transmit frames out of it (into the TAP,
/// towards the guest). Frames never leave the machine: the TAP is attached to nothing else.
/// </summary>
public sealed unsafe class PacketSocket : IDisposable
{
    private const ushort EthPAllNetworkOrder = 0x0300;
    private int _fd;

    public PacketSocket(string interfaceName)
    {
        int ifindex = int.Parse(File.ReadAllText($"/sys/class/net/{interfaceName}/ifindex"));
        _fd = LibC.Socket(LibC.AF_PACKET, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, EthPAllNetworkOrder);
        LinuxException.ThrowIfFailed(_fd, "socket(AF_PACKET)");
        byte* address = stackalloc byte[20];
        new Span<byte>(address, 20).Clear();
        *(ushort*)address = LibC.AF_PACKET;
        *(ushort*)(address + 2) = EthPAllNetworkOrder;
        *(int*)(address + 4) = ifindex;
        LinuxException.ThrowIfFailed(LibC.Bind(_fd, address, 20), "bind(AF_PACKET)");
    }

    public void Send(ReadOnlySpan<byte> frame)
    {
        fixed (byte* p = frame)
        {
            if (LibC.Write(_fd, p, (nuint)frame.Length) != frame.Length)
            {
                throw LinuxException.FromLastError("write to packet socket");
            }
        }
    }

    /// <summary>Waits for a frame that matches; null on timeout.</summary>
    public byte[]? Receive(Func<byte[], bool> match, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        byte[] buffer = new byte[70000];
        while (DateTime.UtcNow < deadline)
        {
            var pollFd = new PollFd { Fd = _fd, Events = LibC.POLLIN };
            if (LibC.Poll(&pollFd, 1, 100) <= 0)
            {
                continue;
            }

            nint n;
            fixed (byte* p = buffer)
            {
                n = LibC.Read(_fd, p, (nuint)buffer.Length);
            }

            if (n > 0 && match(buffer[..(int)n]))
            {
                return buffer[..(int)n];
            }
        }

        return null;
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            LibC.Close(_fd);
            _fd = -1;
        }
    }
}
