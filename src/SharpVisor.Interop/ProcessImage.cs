using System.Runtime.InteropServices;

namespace SharpVisor.Interop;

/// <summary>
/// Replacing or spawning a process image with exactly the argv and environment given (nothing
/// inherited from this process's environment): execve(2), and posix_spawn(3) with a clean signal
/// mask, SIGPIPE back to its default, and optionally a new session and stdio on one descriptor.
/// </summary>
public static unsafe class ProcessImage
{
    /// <summary>execve(2) from the calling thread. Returns only on failure, with the errno.</summary>
    public static int Execute(string path, IReadOnlyList<string> arguments, IReadOnlyList<string> environment)
    {
        nint pathText = Marshal.StringToCoTaskMemUTF8(path);
        byte** argv = StringArray(arguments);
        byte** envp = StringArray(environment);
        LibC.Execve((byte*)pathText, argv, envp);
        int errno = Marshal.GetLastPInvokeError();
        FreeStringArray(argv, arguments.Count);
        FreeStringArray(envp, environment.Count);
        Marshal.FreeCoTaskMem(pathText);
        return errno;
    }

    /// <summary>
    /// posix_spawn(3) from the calling thread (so the child has this thread's namespaces, root and
    /// working directory). <paramref name="stdioFd"/> ≥ 0 becomes the child's 0, 1 and 2. Returns 0
    /// and the child's pid, or the error number.
    /// </summary>
    public static int Spawn(string path, IReadOnlyList<string> arguments, IReadOnlyList<string> environment, bool newSession, int stdioFd, out int pid)
    {
        void* attributes = NativeMemory.AllocZeroed(LibC.PosixSpawnObjectSize);
        void* actions = NativeMemory.AllocZeroed(LibC.PosixSpawnObjectSize);
        byte* emptyMask = stackalloc byte[LibC.SigsetSize];
        byte* defaults = stackalloc byte[LibC.SigsetSize];
        new Span<byte>(emptyMask, LibC.SigsetSize).Clear();
        new Span<byte>(defaults, LibC.SigsetSize).Clear();
        defaults[(LibC.SIGPIPE - 1) / 8] |= (byte)(1 << ((LibC.SIGPIPE - 1) % 8));
        nint pathText = Marshal.StringToCoTaskMemUTF8(path);
        byte** argv = StringArray(arguments);
        byte** envp = StringArray(environment);
        try
        {
            int result = LibC.PosixSpawnattrInit(attributes);
            result = result != 0 ? result : LibC.PosixSpawnFileActionsInit(actions);
            short flags = (short)(LibC.POSIX_SPAWN_SETSIGMASK | LibC.POSIX_SPAWN_SETSIGDEF | (newSession ? LibC.POSIX_SPAWN_SETSID : 0));
            result = result != 0 ? result : LibC.PosixSpawnattrSetflags(attributes, flags);
            result = result != 0 ? result : LibC.PosixSpawnattrSetsigmask(attributes, emptyMask);
            result = result != 0 ? result : LibC.PosixSpawnattrSetsigdefault(attributes, defaults);
            for (int fd = 0; fd < 3 && stdioFd >= 0 && result == 0; fd++)
            {
                result = LibC.PosixSpawnFileActionsAdddup2(actions, stdioFd, fd);
            }

            int child = 0;
            result = result != 0 ? result : LibC.PosixSpawn(&child, (byte*)pathText, actions, attributes, argv, envp);
            pid = child;
            return result;
        }
        finally
        {
            FreeStringArray(argv, arguments.Count);
            FreeStringArray(envp, environment.Count);
            Marshal.FreeCoTaskMem(pathText);
            NativeMemory.Free(attributes);
            NativeMemory.Free(actions);
        }
    }

    /// <summary>Puts the calling thread's signal mask back to empty and SIGPIPE to its default, as a fresh process expects them.</summary>
    public static void ResetSignalsForExec()
    {
        byte* empty = stackalloc byte[LibC.SigsetSize];
        new Span<byte>(empty, LibC.SigsetSize).Clear();
        LibC.Sigprocmask(LibC.SIG_SETMASK, empty, null);
        LibC.Signal(LibC.SIGPIPE, 0);
    }

    private static byte** StringArray(IReadOnlyList<string> values)
    {
        byte** array = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < values.Count; i++)
        {
            array[i] = (byte*)Marshal.StringToCoTaskMemUTF8(values[i]);
        }

        return array;
    }

    private static void FreeStringArray(byte** array, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Marshal.FreeCoTaskMem((nint)array[i]);
        }

        NativeMemory.Free(array);
    }
}
