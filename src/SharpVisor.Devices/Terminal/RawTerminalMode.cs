using System.Runtime.InteropServices;
using SharpVisor.Interop;
using SharpVisor.Interop.Terminal;

namespace SharpVisor.Devices.Terminal;

/// <summary>
/// Puts a terminal into raw mode for the serial console and guarantees the saved settings
/// come back: on Dispose, on SIGINT/SIGTERM/SIGQUIT/SIGHUP, at process exit and when an
/// unhandled exception ends the process. Restoring is idempotent.
/// </summary>
public sealed unsafe class RawTerminalMode : IDisposable
{
    private static readonly PosixSignal[] s_restoringSignals =
    [
        PosixSignal.SIGINT,
        PosixSignal.SIGTERM,
        PosixSignal.SIGQUIT,
        PosixSignal.SIGHUP,
    ];

    private readonly int _fd;
    private readonly Termios _saved;
    private readonly List<PosixSignalRegistration> _signalRegistrations = new();
    private int _restored;
    private bool _disposed;

    private RawTerminalMode(int fd, Termios saved)
    {
        _fd = fd;
        _saved = saved;
    }

    /// <summary>The settings that were in force before, and are put back on restore.</summary>
    public Termios SavedSettings => _saved;

    public bool IsRestored => Volatile.Read(ref _restored) != 0;

    /// <summary>Switches terminal <paramref name="fd"/> to raw mode.</summary>
    /// <exception cref="LinuxException">The descriptor is not a terminal, or its settings cannot be changed.</exception>
    public static RawTerminalMode Enter(int fd)
    {
        Termios saved;
        LinuxException.ThrowIfFailed(Tty.TcGetAttr(fd, &saved), "tcgetattr");
        Termios raw = MakeRaw(saved);

        var mode = new RawTerminalMode(fd, saved);
        mode.InstallRestoreHooks();
        if (Tty.TcSetAttr(fd, Tty.TCSANOW, &raw) < 0)
        {
            var error = LinuxException.FromLastError("tcsetattr");
            mode.RemoveRestoreHooks();
            throw error;
        }

        return mode;
    }

    /// <summary>
    /// The console's raw settings: glibc's cfmakeraw (no echo, no line editing, no signal keys,
    /// 8-bit input taken byte by byte) but with output processing kept, like QEMU's stdio, so
    /// the host's own messages still start at column 0.
    /// </summary>
    public static Termios MakeRaw(Termios settings)
    {
        Termios raw = settings;
        Tty.CfMakeRaw(&raw);
        raw.OutputFlags |= Tty.OPOST;
        return raw;
    }

    /// <summary>Puts the saved settings back (once; later calls do nothing).</summary>
    public void Restore()
    {
        if (Interlocked.Exchange(ref _restored, 1) != 0)
        {
            return;
        }

        Termios saved = _saved;
        Tty.TcSetAttr(_fd, Tty.TCSANOW, &saved);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Restore();
        RemoveRestoreHooks();
    }

    private void InstallRestoreHooks()
    {
        foreach (PosixSignal signal in s_restoringSignals)
        {
            // Restore and let the signal's default handling go on (the process usually ends).
            _signalRegistrations.Add(PosixSignalRegistration.Create(signal, _ => Restore()));
        }

        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        AppDomain.CurrentDomain.UnhandledException += OnUnhandledException;
    }

    private void RemoveRestoreHooks()
    {
        foreach (PosixSignalRegistration registration in _signalRegistrations)
        {
            registration.Dispose();
        }

        _signalRegistrations.Clear();
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        AppDomain.CurrentDomain.UnhandledException -= OnUnhandledException;
    }

    private void OnProcessExit(object? sender, EventArgs e) => Restore();

    private void OnUnhandledException(object sender, UnhandledExceptionEventArgs e) => Restore();
}
