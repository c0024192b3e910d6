using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>
/// What a jailer needs: namespaces, mounts, device nodes, credentials, resource limits and
/// exec/spawn (`sharpvisor jailer`, docs/firecracker.md "Jailer"). Namespace and root changes
/// apply to the calling thread; credential changes (glibc) to every thread of the process.
/// </summary>
public static unsafe partial class LibC
{
    public const int CLONE_NEWNS = 0x00020000;
    public const int CLONE_NEWPID = 0x20000000;
    public const int CLONE_NEWNET = 0x40000000;

    public const ulong MS_RDONLY = 0x1;
    public const ulong MS_NOSUID = 0x2;
    public const ulong MS_NODEV = 0x4;
    public const ulong MS_NOEXEC = 0x8;
    public const ulong MS_REMOUNT = 0x20;
    public const ulong MS_BIND = 0x1000;
    public const ulong MS_REC = 0x4000;
    public const ulong MS_SLAVE = 0x80000;

    public const int MNT_DETACH = 0x2;

    public const uint S_IFCHR = 0x2000;
    public const uint S_IRUSR = 0x100;
    public const uint S_IWUSR = 0x80;

    public const int RLIMIT_FSIZE = 1;
    public const int RLIMIT_NOFILE = 7;

    public const uint CLOSE_RANGE_CLOEXEC = 0x4;

    public const int PR_SET_NO_NEW_PRIVS = 38;

    public const int SIG_SETMASK = 2;
    public const int SIGPIPE = 13;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;

    /// <summary>Bytes reserved for glibc's posix_spawnattr_t (336 on x86-64) and posix_spawn_file_actions_t (80).</summary>
    public const int PosixSpawnObjectSize = 512;

    /// <summary>sigset_t as glibc lays it out: 1024 bits.</summary>
    public const int SigsetSize = 128;

    public const int O_NOFOLLOW = 0x20000;
    public const int O_EXCL = 0x80;

    [LibraryImport(Library, EntryPoint = "fstat", SetLastError = true)]
    public static partial int Fstat(int fd, FileStat* buffer);

    [LibraryImport(Library, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int OpenWithMode(string path, int flags, uint mode);

    [LibraryImport(Library, EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    [LibraryImport(Library, EntryPoint = "setns", SetLastError = true)]
    public static partial int Setns(int fd, int nstype);

    [LibraryImport(Library, EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mount(string? source, string target, string? fileSystemType, ulong flags, string? data);

    [LibraryImport(Library, EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport(Library, EntryPoint = "chdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chdir(string path);

    [LibraryImport(Library, EntryPoint = "chroot", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chroot(string path);

    [LibraryImport(Library, EntryPoint = "mkdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mkdir(string path, uint mode);

    [LibraryImport(Library, EntryPoint = "rmdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Rmdir(string path);

    [LibraryImport(Library, EntryPoint = "mknod", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mknod(string path, uint mode, ulong device);

    [LibraryImport(Library, EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chown(string path, uint uid, uint gid);

    [LibraryImport(Library, EntryPoint = "fchown", SetLastError = true)]
    public static partial int Fchown(int fd, uint uid, uint gid);

    [LibraryImport(Library, EntryPoint = "chmod", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Chmod(string path, uint mode);

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial nint Syscall2(nint number, byte* first, byte* second);

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial nint Syscall3(nint number, nint first, nint second, nint third);

    /// <summary>pivot_root(2): glibc has no wrapper.</summary>
    public static int PivotRoot(string newRoot, string putOld)
    {
        const int SYS_pivot_root = 155;
        byte[] root = NullTerminated(newRoot);
        byte[] old = NullTerminated(putOld);
        fixed (byte* r = root)
        fixed (byte* o = old)
        {
            return (int)Syscall2(SYS_pivot_root, r, o);
        }
    }

    /// <summary>close_range(2) (Linux 5.9; CLOSE_RANGE_CLOEXEC 5.11).</summary>
    public static int CloseRange(uint first, uint last, uint flags)
    {
        const int SYS_close_range = 436;
        return (int)Syscall3(SYS_close_range, (nint)first, (nint)last, (nint)flags);
    }

    [LibraryImport(Library, EntryPoint = "setgroups", SetLastError = true)]
    public static partial int Setgroups(nuint size, uint* groups);

    [LibraryImport(Library, EntryPoint = "setgid", SetLastError = true)]
    public static partial int Setgid(uint gid);

    [LibraryImport(Library, EntryPoint = "setuid", SetLastError = true)]
    public static partial int Setuid(uint uid);

    [LibraryImport(Library, EntryPoint = "getresuid", SetLastError = true)]
    public static partial int Getresuid(uint* real, uint* effective, uint* saved);

    [LibraryImport(Library, EntryPoint = "getresgid", SetLastError = true)]
    public static partial int Getresgid(uint* real, uint* effective, uint* saved);

    [LibraryImport(Library, EntryPoint = "getgroups", SetLastError = true)]
    public static partial int Getgroups(int size, uint* groups);

    [LibraryImport(Library, EntryPoint = "getsid", SetLastError = true)]
    public static partial int Getsid(int pid);

    [LibraryImport(Library, EntryPoint = "setrlimit", SetLastError = true)]
    public static partial int Setrlimit(int resource, ulong* limit);

    [LibraryImport(Library, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(Library, EntryPoint = "sigprocmask", SetLastError = true)]
    public static partial int Sigprocmask(int how, byte* set, byte* oldSet);

    [LibraryImport(Library, EntryPoint = "signal", SetLastError = true)]
    public static partial nint Signal(int signal, nint handler);

    [LibraryImport(Library, EntryPoint = "execve", SetLastError = true)]
    public static partial int Execve(byte* path, byte** argv, byte** envp);

    [LibraryImport(Library, EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_init")]
    public static partial int PosixSpawnattrInit(void* attributes);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int PosixSpawnattrSetflags(void* attributes, short flags);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int PosixSpawnattrSetsigmask(void* attributes, byte* mask);

    [LibraryImport(Library, EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int PosixSpawnattrSetsigdefault(void* attributes, byte* signals);

    [LibraryImport(Library, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int PosixSpawnFileActionsInit(void* fileActions);

    [LibraryImport(Library, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int PosixSpawnFileActionsAdddup2(void* fileActions, int fd, int newFd);

    [LibraryImport(Library, EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint RealpathNative(string path, nint resolved);

    [LibraryImport(Library, EntryPoint = "free")]
    private static partial void Free(nint pointer);

    /// <summary>realpath(3): the canonical path, or null with the errno in <paramref name="errno"/>.</summary>
    public static string? Realpath(string path, out int errno)
    {
        nint resolved = RealpathNative(path, 0);
        if (resolved == 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        errno = 0;
        string result = Marshal.PtrToStringUTF8(resolved)!;
        Free(resolved);
        return result;
    }

    /// <summary>makedev(3) as glibc encodes it.</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    /// <summary>A string as a NUL-terminated UTF-8 byte array, for argv/envp.</summary>
    public static byte[] NullTerminated(string value)
    {
        byte[] bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(value) + 1];
        System.Text.Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }
}
