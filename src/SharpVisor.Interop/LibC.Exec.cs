using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>What a process needs to replace itself and keep descriptors across the exec (the Firecracker front end's handover).</summary>
public static unsafe partial class LibC
{
    public const int F_GETFD = 1;
    public const int F_SETFD = 2;
    public const int FD_CLOEXEC = 1;

    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(Library, EntryPoint = "execve", SetLastError = true)]
    private static partial int ExecveNative(byte* path, byte** argv, byte** envp);

    /// <summary>
    /// execve(2): on success it does not return. On failure it returns and
    /// <see cref="Marshal.GetLastPInvokeError"/> holds errno.
    /// </summary>
    public static void Execve(string path, IReadOnlyList<string> arguments, IReadOnlyList<string> environment)
    {
        var allocations = new List<nint>();
        byte* Utf8(string text)
        {
            nint p = Marshal.StringToCoTaskMemUTF8(text);
            allocations.Add(p);
            return (byte*)p;
        }

        try
        {
            byte** argv = stackalloc byte*[arguments.Count + 1];
            for (int i = 0; i < arguments.Count; i++)
            {
                argv[i] = Utf8(arguments[i]);
            }

            argv[arguments.Count] = null;
            nint envBlock = Marshal.AllocCoTaskMem((environment.Count + 1) * sizeof(nint));
            allocations.Add(envBlock);
            byte** envp = (byte**)envBlock;
            for (int i = 0; i < environment.Count; i++)
            {
                envp[i] = Utf8(environment[i]);
            }

            envp[environment.Count] = null;
            ExecveNative(Utf8(path), argv, envp);
        }
        finally
        {
            // Only reached when execve failed.
            int errno = Marshal.GetLastPInvokeError();
            foreach (nint p in allocations)
            {
                Marshal.FreeCoTaskMem(p);
            }

            Marshal.SetLastPInvokeError(errno);
        }
    }
}
