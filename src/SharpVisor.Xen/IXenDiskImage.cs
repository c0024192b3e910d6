namespace SharpVisor.Xen;

/// <summary>
/// What blkback needs of a disk: its size, reads and writes at byte offsets (multiples of 512),
/// a flush that makes completed writes durable, and discard. The host's raw image file is one;
/// tests use memory. Failures are <see cref="IOException"/>s, which blkback answers with
/// BLKIF_RSP_ERROR.
/// </summary>
public interface IXenDiskImage
{
    long Size { get; }

    bool ReadOnly { get; }

    void Read(long offset, Span<byte> destination);

    void Write(long offset, ReadOnlySpan<byte> source);

    void Flush();

    void Discard(long offset, long length);
}
