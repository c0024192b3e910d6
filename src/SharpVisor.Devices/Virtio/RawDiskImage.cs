using System.Runtime.InteropServices;
using SharpVisor.Interop;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// A raw disk image file, the virtio-blk back end: positional reads and writes straight to and
/// from guest memory, fsync for flushes, and hole punching for discard and write-zeroes.
/// </summary>
public sealed unsafe class RawDiskImage : IDisposable
{
    private int _fd;
    private long _dataSyncs;
    private bool _noWaitReads = true;
    private bool _noWaitWrites = true;

    public RawDiskImage(string path, bool readOnly = false)
    {
        Path = path;
        ReadOnly = readOnly;
        _fd = LibC.Open(path, (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC);
        if (_fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open disk image '{path}': {LibC.Strerror(errno)}");
        }

        Size = new FileInfo(path).Length;
    }

    public string Path { get; }

    public bool ReadOnly { get; }

    /// <summary>Size in bytes when opened; the disk's capacity is this rounded down to 512-byte sectors.</summary>
    public long Size { get; }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes (zeros past the end of the file).</summary>
    public void Read(long offset, Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                nint n = LibC.Pread(_fd, p + done, (nuint)(destination.Length - done), offset + done);
                if (n < 0)
                {
                    ThrowUnlessInterrupted("read");
                    continue;
                }

                if (n == 0)
                {
                    destination[done..].Clear();
                    return;
                }

                done += (int)n;
            }
        }
    }

    /// <summary>
    /// Reads into <paramref name="buffers"/> (host memory, in order) from <paramref name="offset"/>,
    /// one preadv2 per <see cref="LibC.IOV_MAX"/> buffers. With <paramref name="noWait"/> it only
    /// succeeds when the host's page cache holds every byte (RWF_NOWAIT): false means "this would
    /// wait for the disk" (the buffers may hold part of the data; nothing else changed) — also when
    /// the file system cannot tell. Without it, reads everything (zeros past the end of the file).
    /// </summary>
    public bool ReadVectored(long offset, ReadOnlySpan<IoVector> buffers, bool noWait)
    {
        if (noWait && !Volatile.Read(ref _noWaitReads))
        {
            return false;
        }

        for (int first = 0; first < buffers.Length; first += LibC.IOV_MAX)
        {
            ReadOnlySpan<IoVector> chunk = buffers.Slice(first, Math.Min(LibC.IOV_MAX, buffers.Length - first));
            long length = TotalLength(chunk);
            nint n;
            fixed (IoVector* p = chunk)
            {
                n = LibC.Preadv2(_fd, p, chunk.Length, offset, noWait ? LibC.RWF_NOWAIT : 0);
            }

            if (n != length)
            {
                if (noWait)
                {
                    DisableNoWaitIfUnsupported(n, ref _noWaitReads);
                    return false;
                }

                // Interrupted, short (end of file) or failed: the careful path, buffer by buffer.
                long at = offset;
                foreach (IoVector v in chunk)
                {
                    Read(at, new Span<byte>(v.Base, checked((int)v.Length)));
                    at += (long)v.Length;
                }
            }

            offset += length;
        }

        return true;
    }

    /// <summary>
    /// Writes <paramref name="buffers"/> (host memory, in order) at <paramref name="offset"/>, one
    /// pwritev2 per <see cref="LibC.IOV_MAX"/> buffers. With <paramref name="noWait"/> false means
    /// "this would block" (RWF_NOWAIT refused it, or wrote part of it): write it again without.
    /// </summary>
    public bool WriteVectored(long offset, ReadOnlySpan<IoVector> buffers, bool noWait)
    {
        EnsureWritable();
        if (noWait && !Volatile.Read(ref _noWaitWrites))
        {
            return false;
        }

        for (int first = 0; first < buffers.Length; first += LibC.IOV_MAX)
        {
            ReadOnlySpan<IoVector> chunk = buffers.Slice(first, Math.Min(LibC.IOV_MAX, buffers.Length - first));
            long length = TotalLength(chunk);
            nint n;
            fixed (IoVector* p = chunk)
            {
                n = LibC.Pwritev2(_fd, p, chunk.Length, offset, noWait ? LibC.RWF_NOWAIT : 0);
            }

            if (n != length)
            {
                if (noWait)
                {
                    DisableNoWaitIfUnsupported(n, ref _noWaitWrites);
                    return false;
                }

                long at = offset;
                foreach (IoVector v in chunk)
                {
                    Write(at, new ReadOnlySpan<byte>(v.Base, checked((int)v.Length)));
                    at += (long)v.Length;
                }
            }

            offset += length;
        }

        return true;
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        EnsureWritable();
        fixed (byte* p = source)
        {
            int done = 0;
            while (done < source.Length)
            {
                nint n = LibC.Pwrite(_fd, p + done, (nuint)(source.Length - done), offset + done);
                if (n < 0)
                {
                    ThrowUnlessInterrupted("write");
                    continue;
                }

                done += (int)n;
            }
        }
    }

    /// <summary>Makes completed writes durable (a real fsync).</summary>
    public void Flush()
    {
        if (LibC.Fsync(_fd) < 0)
        {
            throw new IOException($"fsync of '{Path}' failed: {LibC.Strerror(Marshal.GetLastPInvokeError())}");
        }
    }

    /// <summary>Makes written data durable (fdatasync: the data and the metadata needed to read it back).</summary>
    public void SyncData()
    {
        if (LibC.Fdatasync(_fd) < 0)
        {
            throw new IOException($"fdatasync of '{Path}' failed: {LibC.Strerror(Marshal.GetLastPInvokeError())}");
        }

        Interlocked.Increment(ref _dataSyncs);
    }

    /// <summary>How many times <see cref="SyncData"/> completed.</summary>
    public long DataSyncs => Interlocked.Read(ref _dataSyncs);

    /// <summary>Deallocates a range; it reads back as zeros (written as zeros where holes are unsupported).</summary>
    public void Discard(long offset, long length)
    {
        EnsureWritable();
        if (LibC.Fallocate(_fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length) == 0)
        {
            return;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno != LibC.EOPNOTSUPP)
        {
            throw new IOException($"punching a hole in '{Path}' failed: {LibC.Strerror(errno)}");
        }

        WriteZeroes(offset, length, unmap: false);
    }

    /// <summary>Zeroes a range, deallocating it when <paramref name="unmap"/> allows; falls back to writing zeros.</summary>
    public void WriteZeroes(long offset, long length, bool unmap)
    {
        EnsureWritable();
        int mode = unmap ? LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE : LibC.FALLOC_FL_ZERO_RANGE | LibC.FALLOC_FL_KEEP_SIZE;
        if (LibC.Fallocate(_fd, mode, offset, length) == 0)
        {
            return;
        }

        byte[] zeros = new byte[Math.Min(length, 1 << 20)];
        for (long done = 0; done < length; done += zeros.Length)
        {
            Write(offset + done, zeros.AsSpan(0, (int)Math.Min(zeros.Length, length - done)));
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

    private void EnsureWritable()
    {
        if (ReadOnly)
        {
            throw new IOException($"disk image '{Path}' is read-only");
        }
    }

    private static long TotalLength(ReadOnlySpan<IoVector> buffers)
    {
        long total = 0;
        foreach (IoVector v in buffers)
        {
            total += (long)v.Length;
        }

        return total;
    }

    /// <summary>A file system without RWF_NOWAIT says so once; then every request takes the waiting path.</summary>
    private static void DisableNoWaitIfUnsupported(nint result, ref bool enabled)
    {
        if (result < 0 && Marshal.GetLastPInvokeError() == LibC.EOPNOTSUPP)
        {
            Volatile.Write(ref enabled, false);
        }
    }

    private void ThrowUnlessInterrupted(string operation)
    {
        int errno = Marshal.GetLastPInvokeError();
        if (errno != LibC.EINTR)
        {
            throw new IOException($"{operation} of '{Path}' failed: {LibC.Strerror(errno)}");
        }
    }
}
