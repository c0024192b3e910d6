using System.Runtime.InteropServices;
using SharpVisor.Interop;

namespace SharpVisor.Kvm;

/// <summary>
/// The signal that knocks a vCPU thread out of KVM_RUN. KVM_RUN returns -EINTR as soon as a
/// signal is pending for its thread, but the signal must not kill the process, so it needs a
/// handler — one that does nothing. The .NET runtime uses SIGRTMIN itself (activation injection
/// for GC suspension, see INJECT_ACTIVATION_SIGNAL in the runtime's pal/src/exception/signal.cpp)
/// and glibc reserves the two below it, so SharpVisor takes SIGRTMIN+6, computed from glibc's
/// __libc_current_sigrtmin().
/// <para>
/// The handler cannot be a managed delegate: it would run on a thread the runtime may be
/// suspending, which is unsafe. It is a one-byte machine-code stub, <c>ret</c> (0xC3), in a page
/// mapped read+execute. glibc's sigaction() fills in sa_restorer (__restore_rt), so the kernel
/// makes the handler return into rt_sigreturn and the thread resumes where it was.
/// </para>
/// <para>
/// SA_RESTART is set so that a kick landing while the vCPU thread is elsewhere (a device's
/// blocking read, the runtime's futex waits) restarts that system call instead of failing it
/// with EINTR. KVM_RUN is unaffected: KVM returns plain -EINTR, which is never restarted.
/// </para>
/// </summary>
internal static unsafe class VcpuKickSignal
{
    private const int OffsetFromSigrtmin = 6;
    private const int Sigrtmax = 64;
    private const byte RetInstruction = 0xC3;

    private static readonly Lazy<int> s_number = new(Install, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The signal number, with its handler installed on first use (once per process).</summary>
    public static int Number => s_number.Value;

    private static int Install()
    {
        int signal = LibC.LibcCurrentSigrtmin() + OffsetFromSigrtmin;
        if (signal > Sigrtmax)
        {
            throw new InvalidOperationException($"no real-time signal available for vCPU kicks (SIGRTMIN+{OffsetFromSigrtmin} = {signal})");
        }

        SigAction old;
        LinuxException.ThrowIfFailed(LibC.Sigaction(signal, null, &old), "sigaction (query)");
        if (old.Handler != 0)
        {
            throw new InvalidOperationException($"signal {signal} (SIGRTMIN+{OffsetFromSigrtmin}) already has a handler; SharpVisor needs it to kick vCPUs");
        }

        const int pageSize = 4096;
        nint page = LibC.Mmap(0, pageSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
        if (page == LibC.MAP_FAILED)
        {
            throw LinuxException.FromLastError("mmap of the vCPU kick handler");
        }

        *(byte*)page = RetInstruction;
        LinuxException.ThrowIfFailed(LibC.Mprotect(page, pageSize, LibC.PROT_READ | LibC.PROT_EXEC), "mprotect of the vCPU kick handler");

        // The page stays mapped for the life of the process: the handler may run at any time.
        SigAction action = default;
        action.Handler = page;
        action.Flags = SigAction.SA_RESTART;
        LinuxException.ThrowIfFailed(LibC.Sigaction(signal, &action, null), "sigaction (install vCPU kick handler)");
        return signal;
    }

    /// <summary>Sends the kick to thread <paramref name="tid"/> of this process; false when the thread is gone.</summary>
    public static bool Send(int tid)
    {
        if (LibC.Tgkill(LibC.Getpid(), tid, Number) == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno == LibC.ESRCH)
        {
            return false;
        }

        throw new LinuxException("tgkill (vCPU kick)", errno);
    }
}
