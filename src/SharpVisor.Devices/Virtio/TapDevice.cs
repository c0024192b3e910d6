using System.Runtime.InteropServices;
using System.Text;
using SharpVisor.Interop;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// A Linux TAP interface opened through /dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR:
/// every frame read or written carries a virtio-net header in front, so guest checksum and
/// segmentation offloads pass straight through. Opening a name that does not exist creates a
/// transient interface that disappears when the descriptor closes; an existing (persistent)
/// interface is attached to.
/// </summary>
public sealed unsafe class TapDevice : IDisposable
{
    public const uint TunFlagChecksum = 0x01;
    public const uint TunFlagTso4 = 0x02;
    public const uint TunFlagTso6 = 0x04;
    public const uint TunFlagTsoEcn = 0x08;

    private const uint TunSetIff = 0x400454CA;
    private const uint TunSetOffload = 0x400454D0;
    private const uint TunSetVnetHdrSz = 0x400454D8;
    private const short IffTap = 0x0002;
    private const short IffNoPi = 0x1000;
    private const short IffVnetHdr = 0x4000;
    private const int InterfaceRequestSize = 40;
    private const int InterfaceNameSize = 16;

    private int _fd;

    private TapDevice(int fd, string name)
    {
        _fd = fd;
        Name = name;
    }

    public string Name { get; }

    public int Fd => _fd;

    /// <summary>Opens (creating if needed) TAP interface <paramref name="name"/>; "" lets the kernel pick tapN.</summary>
    public static TapDevice Open(string name)
    {
        if (Encoding.ASCII.GetByteCount(name) >= InterfaceNameSize)
        {
            throw new ArgumentException($"interface name '{name}' is longer than {InterfaceNameSize - 1} characters", nameof(name));
        }

        int fd = LibC.Open("/dev/net/tun", LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string hint = errno == LibC.ENOENT ? " (is the tun module loaded?)" : errno is LibC.EACCES or LibC.EPERM ? " (TAP networking needs access to /dev/net/tun)" : "";
            throw new IOException($"cannot open /dev/net/tun: {LibC.Strerror(errno)}{hint}");
        }

        byte* request = stackalloc byte[InterfaceRequestSize];
        new Span<byte>(request, InterfaceRequestSize).Clear();
        Encoding.ASCII.GetBytes(name, new Span<byte>(request, InterfaceNameSize));
        *(short*)(request + InterfaceNameSize) = IffTap | IffNoPi | IffVnetHdr;
        if (LibC.Ioctl(fd, TunSetIff, request) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            LibC.Close(fd);
            string what = name.Length == 0 ? "a new TAP interface" : $"TAP '{name}'";
            string hint = errno == LibC.EPERM
                ? " (creating a TAP needs CAP_NET_ADMIN; an existing persistent TAP must be owned by this user)"
                : errno == LibC.EBUSY ? " (another process has it open)" : "";
            throw new IOException($"cannot create or attach {what}: {LibC.Strerror(errno)}{hint}");
        }

        string actual = Encoding.ASCII.GetString(new ReadOnlySpan<byte>(request, InterfaceNameSize)).TrimEnd('\0');
        return new TapDevice(fd, actual);
    }

    /// <summary>The size of the virtio-net header in front of each frame (12 for virtio 1.x).</summary>
    public void SetVnetHeaderSize(int size)
    {
        int value = size;
        if (LibC.Ioctl(_fd, TunSetVnetHdrSz, &value) < 0)
        {
            throw new IOException($"TUNSETVNETHDRSZ on {Name} failed: {LibC.Strerror(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>Which offloaded frames the TAP may hand us (TUN_F_*); false when the kernel refuses.</summary>
    public bool TrySetOffload(uint flags) => LibC.Ioctl(_fd, TunSetOffload, (nint)flags) == 0;

    /// <summary>Reads one frame (with its header); returns 0 when none is waiting.</summary>
    public int Read(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = LibC.Read(_fd, p, (nuint)buffer.Length);
                if (n >= 0)
                {
                    return (int)n;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EAGAIN)
                {
                    return 0;
                }

                if (errno != LibC.EINTR)
                {
                    throw new IOException($"read from {Name} failed: {LibC.Strerror(errno)}");
                }
            }
        }
    }

    /// <summary>Writes one frame (with its header); returns false when the kernel dropped it.</summary>
    public bool Write(ReadOnlySpan<byte> frame)
    {
        fixed (byte* p = frame)
        {
            while (true)
            {
                nint n = LibC.Write(_fd, p, (nuint)frame.Length);
                if (n >= 0)
                {
                    return true;
                }

                if (Marshal.GetLastPInvokeError() != LibC.EINTR)
                {
                    return false;
                }
            }
        }
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
