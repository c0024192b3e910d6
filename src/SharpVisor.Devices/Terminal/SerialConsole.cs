using System.Runtime.InteropServices;
using SharpVisor.Devices.Legacy;
using SharpVisor.Interop;
using SharpVisor.Interop.Terminal;

namespace SharpVisor.Devices.Terminal;

/// <summary>
/// Connects a UART to the host: guest output to a stream (stdout or a file, written in
/// batches by an <see cref="OutputPump"/> and flushed on Dispose), and, when there
/// is an input descriptor (the interactive terminal, in raw mode), host keystrokes to the
/// guest. Input is read on a background thread that polls the descriptor together with a
/// stop eventfd, so Dispose can always end it. With an escape callback, Ctrl-A x calls it.
/// </summary>
public sealed unsafe class SerialConsole : IDisposable
{
    public const string EscapeHint = "[sharpvisor: console escape is Ctrl-A x]";

    private const int ReadChunk = 4096;
    private const int EIO = 5;

    private readonly Stream _output;
    private readonly bool _ownsOutput;
    private readonly int _inputFd;
    private readonly RawTerminalMode? _rawMode;
    private readonly Action? _onEscape;
    private readonly ConsoleEscapeParser _escapeParser = new();
    private readonly EventFd? _stopSignal;
    private readonly object _lock = new();
    private Thread? _inputThread;
    private Serial16550? _uart;
    private string? _inputError;
    private bool _disposed;

    /// <summary>
    /// A console on explicit endpoints. <paramref name="inputFd"/> (not owned) is read when it is
    /// not negative; <paramref name="rawMode"/> puts it into raw mode for the console's lifetime.
    /// </summary>
    public SerialConsole(Stream output, bool ownsOutput, int inputFd = -1, bool rawMode = false, Action? onEscape = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _ownsOutput = ownsOutput;
        _inputFd = inputFd;
        _onEscape = onEscape;
        if (inputFd >= 0)
        {
            _stopSignal = new EventFd(nonBlocking: true);
            if (rawMode)
            {
                try
                {
                    _rawMode = RawTerminalMode.Enter(inputFd);
                }
                catch
                {
                    _stopSignal.Dispose();
                    throw;
                }
            }
        }
    }

    /// <summary>True when the input terminal is in raw mode under this console.</summary>
    public bool IsInteractive => _rawMode is not null;

    public Stream Output => _output;

    /// <summary>Why output to the host stopped (e.g. the disk is full), or null.</summary>
    public string? OutputError => (_output as OutputPump)?.Error;

    /// <summary>Why input stopped early (a read error, a failing escape handler), or null.</summary>
    public string? InputError
    {
        get
        {
            lock (_lock)
            {
                return _inputError;
            }
        }
    }

    /// <summary>
    /// Opens a console from a command-line spec: <c>stdio</c> (the terminal, interactive when
    /// stdin is a terminal), <c>file:PATH</c> (output only, created or truncated) or <c>none</c>.
    /// </summary>
    public static SerialConsole Open(string spec, Action? onEscape, TextWriter? notices = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec == "stdio")
        {
            return OpenStdio(onEscape, notices);
        }

        if (spec.StartsWith("file:", StringComparison.Ordinal))
        {
            return OpenFile(spec["file:".Length..]);
        }

        if (spec is "none" or "null")
        {
            return new SerialConsole(Stream.Null, ownsOutput: false);
        }

        throw new ArgumentException($"unknown serial console '{spec}' (expected stdio, file:PATH or none)", nameof(spec));
    }

    /// <summary>
    /// Output to stdout without .NET's buffering; when stdin is a terminal, it is put into raw
    /// mode and read, and the escape hint goes to <paramref name="notices"/> (stderr by default).
    /// </summary>
    public static SerialConsole OpenStdio(Action? onEscape, TextWriter? notices = null)
    {
        // Console.OpenStandardOutput is unbuffered; the pump batches whatever the guest
        // writes while a write is in progress, and writes the rest at once.
        var stdout = new OutputPump(System.Console.OpenStandardOutput());
        if (LibC.Isatty(0) != 1)
        {
            // Piped or redirected input (a script typing into the guest): fed as is, no escape key,
            // and never dropped: the feeder waits for the guest to drain the UART.
            return new SerialConsole(stdout, ownsOutput: true, inputFd: 0);
        }

        (notices ?? System.Console.Error).WriteLine(EscapeHint);
        try
        {
            return new SerialConsole(stdout, ownsOutput: true, inputFd: 0, rawMode: true, onEscape);
        }
        catch
        {
            stdout.Dispose();
            throw;
        }
    }

    /// <summary>Output to a file, created or truncated; no input.</summary>
    public static SerialConsole OpenFile(string path)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new ArgumentException("the serial console file name is empty (expected file:PATH)", nameof(path));
        }

        FileStream file;
        try
        {
            // No FileStream buffering: the pump decides when bytes go out, and that is at once.
            file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new IOException($"cannot open serial console file '{path}': {e.Message}", e);
        }

        return new SerialConsole(new OutputPump(file, ownsTarget: true), ownsOutput: true);
    }

    /// <summary>
    /// A second console on the same terminal (a Xen domain's hvc0): it gets every input byte too,
    /// without loss (it returns how many it took), while the UART then gets input best-effort.
    /// </summary>
    public Func<ReadOnlyMemory<byte>, int>? SecondaryInput { get; set; }

    /// <summary>Routes <paramref name="uart"/>'s output here and starts feeding it input.</summary>
    public void Attach(Serial16550 uart)
    {
        ArgumentNullException.ThrowIfNull(uart);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_uart is not null)
            {
                throw new InvalidOperationException("the serial console is already attached to a UART");
            }

            _uart = uart;
            uart.Output = _output;
            if (_inputFd >= 0)
            {
                _inputThread = new Thread(() => InputLoop(uart))
                {
                    IsBackground = true,
                    Name = "serial console input",
                };
                _inputThread.Start();
            }
        }
    }

    public void Dispose()
    {
        Thread? thread;
        Serial16550? uart;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            thread = _inputThread;
            uart = _uart;
        }

        if (thread is not null)
        {
            _stopSignal!.Signal();

            // The escape callback may dispose the console from the input thread itself.
            if (thread != Thread.CurrentThread)
            {
                thread.Join();
            }
        }

        _rawMode?.Dispose();

        // Detach before closing so a still-running vCPU does not write to a closed stream.
        if (uart is not null && ReferenceEquals(uart.Output, _output))
        {
            uart.Output = null;
        }

        // Closing the output writes out whatever the guest sent last.
        if (_ownsOutput)
        {
            _output.Dispose();
        }

        // The input thread has ended (joined), or is the caller and returns without polling again.
        _stopSignal?.Dispose();
    }

    /// <summary>Hands <paramref name="data"/> to the secondary console, waiting while it is full; false when disposing.</summary>
    private bool FeedSecondary(Func<ReadOnlyMemory<byte>, int> secondary, ReadOnlyMemory<byte> data)
    {
        PollFd stop = default;
        while (true)
        {
            data = data[secondary(data)..];
            if (data.IsEmpty)
            {
                return true;
            }

            stop.Fd = _stopSignal!.Fd;
            stop.Events = LibC.POLLIN;
            stop.Revents = 0;
            if (LibC.Poll(&stop, 1, 2) > 0)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Hands <paramref name="data"/> to the UART, waiting while its buffer is full (the guest reads
    /// at its own pace); false when the console is being disposed meanwhile.
    /// </summary>
    private bool FeedWithoutLoss(Serial16550 uart, ReadOnlySpan<byte> data)
    {
        PollFd stop = default;
        while (true)
        {
            data = data[uart.OfferInput(data)..];
            if (data.IsEmpty)
            {
                return true;
            }

            stop.Fd = _stopSignal!.Fd;
            stop.Events = LibC.POLLIN;
            stop.Revents = 0;
            if (LibC.Poll(&stop, 1, 2) > 0)
            {
                return false;
            }
        }
    }

    private void InputLoop(Serial16550 uart)
    {
        byte[] buffer = new byte[ReadChunk];
        byte[] filtered = new byte[ReadChunk + 1];
        PollFd* fds = stackalloc PollFd[2];
        try
        {
            while (true)
            {
                fds[0] = new PollFd { Fd = _inputFd, Events = LibC.POLLIN };
                fds[1] = new PollFd { Fd = _stopSignal!.Fd, Events = LibC.POLLIN };
                if (LibC.Poll(fds, 2, -1) < 0)
                {
                    if (Marshal.GetLastPInvokeError() == LibC.EINTR)
                    {
                        continue;
                    }

                    throw LinuxException.FromLastError("poll on console input");
                }

                if (fds[1].Revents != 0)
                {
                    return;
                }

                if ((fds[0].Revents & LibC.POLLIN) == 0)
                {
                    // Hang-up or error without data: the terminal is gone.
                    return;
                }

                nint count;
                fixed (byte* p = buffer)
                {
                    count = LibC.Read(_inputFd, p, (nuint)buffer.Length);
                }

                if (count < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno is LibC.EINTR or LibC.EAGAIN)
                    {
                        continue;
                    }

                    // EIO is how a terminal reports that its other end hung up.
                    if (errno == EIO)
                    {
                        return;
                    }

                    throw new LinuxException("read from console input", errno);
                }

                if (count == 0)
                {
                    return; // end of input
                }

                if (SecondaryInput is { } secondary)
                {
                    int length = (int)count;
                    bool quitNow = false;
                    if (_onEscape is not null)
                    {
                        quitNow = _escapeParser.Process(buffer.AsSpan(0, (int)count), filtered, out length);
                    }
                    else
                    {
                        buffer.AsSpan(0, length).CopyTo(filtered);
                    }

                    uart.EnqueueInput(filtered.AsSpan(0, length));
                    if (!FeedSecondary(secondary, filtered.AsMemory(0, length)))
                    {
                        return;
                    }

                    if (quitNow)
                    {
                        InvokeEscape();
                        return;
                    }

                    continue;
                }

                if (_onEscape is null)
                {
                    if (!FeedWithoutLoss(uart, buffer.AsSpan(0, (int)count)))
                    {
                        return;
                    }

                    continue;
                }

                bool quit = _escapeParser.Process(buffer.AsSpan(0, (int)count), filtered, out int written);
                if (written > 0)
                {
                    uart.EnqueueInput(filtered.AsSpan(0, written));
                }

                if (quit)
                {
                    InvokeEscape();
                    return;
                }
            }
        }
        catch (LinuxException e)
        {
            RecordInputError(e.Message);
        }
    }

    private void InvokeEscape()
    {
        try
        {
            _onEscape!();
        }
        catch (Exception e)
        {
            // An exception on this background thread would end the process with the terminal raw.
            RecordInputError($"console escape handler failed: {e.Message}");
        }
    }

    private void RecordInputError(string message)
    {
        lock (_lock)
        {
            _inputError = message;
        }
    }
}
