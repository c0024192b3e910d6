using System.Runtime.InteropServices;
using System.Text;
using SharpVisor.Interop;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// A VMM's log file (the daemon's <c>vmm.log</c> under the runtime directory, on tmpfs): capped
/// and rotated, and a writer that never throws. Before a write would take the file past
/// <see cref="LimitBytes"/>, its contents move to <c>path.1</c> (replacing the older copy) and
/// the file starts again empty, so the two together stay under twice the limit. The file is
/// truncated in place rather than renamed, because the VMM's own stderr (opened by the launcher
/// with O_APPEND, where the runtime writes a crash report) keeps pointing at it. A failed write
/// (ENOSPC: /run is full) drops the text and counts it.
/// </summary>
public sealed unsafe class VmmLogFile : TextWriter
{
    public const long DefaultLimitBytes = 1 << 20;

    private readonly object _lock = new();
    private int _fd;
    private long _size;
    private long _droppedWrites;

    public VmmLogFile(string path, long limitBytes = DefaultLimitBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limitBytes, 4096);
        Path = path;
        LimitBytes = limitBytes;
        _fd = LibC.Open(path, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_APPEND | LibC.O_CLOEXEC, 0b110_100_000);
        if (_fd < 0)
        {
            throw new IOException($"cannot open log file '{path}': {LibC.Strerror(Marshal.GetLastPInvokeError())}");
        }

        _size = new FileInfo(path).Length;
    }

    public string Path { get; }

    public long LimitBytes { get; }

    /// <summary>The rotated copy.</summary>
    public string PreviousPath => Path + ".1";

    /// <summary>Writes that failed and were dropped.</summary>
    public long DroppedWrites => Interlocked.Read(ref _droppedWrites);

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value) => Append(value.ToString());

    public override void Write(string? value) => Append(value);

    public override void Write(char[] buffer, int index, int count) => Append(new string(buffer, index, count));

    public override void Write(ReadOnlySpan<char> buffer) => Append(new string(buffer));

    public override void WriteLine(string? value) => Append(value + NewLine);

    public override void WriteLine(ReadOnlySpan<char> buffer) => Append(string.Concat(buffer, NewLine));

    protected override void Dispose(bool disposing)
    {
        lock (_lock)
        {
            if (_fd >= 0)
            {
                LibC.Close(_fd);
                _fd = -1;
            }
        }

        base.Dispose(disposing);
    }

    private void Append(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        // One write never exceeds half the limit, so a rotation always makes room for it.
        byte[] bytes = Encoding.UTF8.GetBytes(text.Length > LimitBytes / 8 ? text[..(int)(LimitBytes / 8)] + NewLine : text);
        lock (_lock)
        {
            try
            {
                if (_fd < 0)
                {
                    throw new ObjectDisposedException(nameof(VmmLogFile));
                }

                if (_size + bytes.Length > LimitBytes)
                {
                    Rotate();
                }

                WriteAll(bytes);
            }
            catch (Exception)
            {
                // The log must never take the VMM down: the text is lost, the VMM carries on.
                Interlocked.Increment(ref _droppedWrites);
            }
        }
    }

    private void Rotate()
    {
        try
        {
            File.Copy(Path, PreviousPath, overwrite: true);
        }
        catch (IOException)
        {
            // No room for the copy: the old lines are dropped rather than the new ones.
            TryDelete(PreviousPath);
        }

        if (LibC.Ftruncate(_fd, 0) < 0)
        {
            throw new IOException($"cannot truncate '{Path}': {LibC.Strerror(Marshal.GetLastPInvokeError())}");
        }

        _size = 0;
    }

    private void WriteAll(byte[] bytes)
    {
        fixed (byte* p = bytes)
        {
            int done = 0;
            while (done < bytes.Length)
            {
                nint n = LibC.Write(_fd, p + done, (nuint)(bytes.Length - done));
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.EINTR)
                    {
                        continue;
                    }

                    throw new IOException($"write to '{Path}' failed: {LibC.Strerror(errno)}");
                }

                done += (int)n;
                _size += n;
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
