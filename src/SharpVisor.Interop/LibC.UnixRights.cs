using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>Passing a file descriptor over a Unix socket (SCM_RIGHTS), which .NET's Socket does not offer.</summary>
public static unsafe partial class LibC
{
    private const int SolSocket = 1;
    private const int ScmRights = 1;
    private const int MsgCmsgCloexec = 0x40000000;
    private const int MsgNoSignal = 0x4000;

    // CMSG_SPACE(sizeof(int)) on x86-64: a 16-byte cmsghdr and the int padded to 8.
    private const int RightsSpace = 24;
    private const int RightsLength = 20;

    /// <summary>Sends <paramref name="payload"/> (at least one byte) with <paramref name="fd"/> attached; the bytes sent or -1.</summary>
    public static nint SendWithFileDescriptor(int socket, ReadOnlySpan<byte> payload, int fd)
    {
        byte* control = stackalloc byte[RightsSpace];
        new Span<byte>(control, RightsSpace).Clear();
        *(nuint*)control = RightsLength;
        *(int*)(control + 8) = SolSocket;
        *(int*)(control + 12) = ScmRights;
        *(int*)(control + 16) = fd;
        fixed (byte* data = payload)
        {
            var vector = new IoVector { Base = data, Length = (nuint)payload.Length };
            var header = new MessageHeader { Iov = &vector, IovLength = 1, Control = control, ControlLength = RightsSpace };
            return SendMessage(socket, &header, MsgNoSignal);
        }
    }

    /// <summary>
    /// Receives up to <paramref name="payload"/>'s length and the descriptor sent with it
    /// (close-on-exec; -1 when none came); the bytes received, 0 at the end of the stream, or -1.
    /// </summary>
    public static nint ReceiveWithFileDescriptor(int socket, Span<byte> payload, out int fd)
    {
        fd = -1;
        byte* control = stackalloc byte[RightsSpace * 2];
        new Span<byte>(control, RightsSpace * 2).Clear();
        fixed (byte* data = payload)
        {
            var vector = new IoVector { Base = data, Length = (nuint)payload.Length };
            var header = new MessageHeader { Iov = &vector, IovLength = 1, Control = control, ControlLength = RightsSpace * 2 };
            nint received = ReceiveMessage(socket, &header, MsgCmsgCloexec);
            if (received >= 0 && header.ControlLength >= RightsLength && *(int*)(control + 8) == SolSocket && *(int*)(control + 12) == ScmRights)
            {
                fd = *(int*)(control + 16);
            }

            return received;
        }
    }

    [LibraryImport(Library, EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMessage(int socket, MessageHeader* message, int flags);

    [LibraryImport(Library, EntryPoint = "recvmsg", SetLastError = true)]
    private static partial nint ReceiveMessage(int socket, MessageHeader* message, int flags);

    /// <summary><c>struct msghdr</c> (x86-64).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }
}
