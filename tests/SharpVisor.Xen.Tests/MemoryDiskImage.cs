namespace SharpVisor.Xen.Tests;

/// <summary>A disk in memory for blkback tests, counting flushes and discards.</summary>
internal sealed class MemoryDiskImage : IXenDiskImage
{
    public MemoryDiskImage(int size, bool readOnly = false)
    {
        Bytes = new byte[size];
        ReadOnly = readOnly;
    }

    public byte[] Bytes { get; }

    public long Size => Bytes.Length;

    public bool ReadOnly { get; }

    public int Flushes { get; private set; }

    public int Discards { get; private set; }

    public void Read(long offset, Span<byte> destination) => Bytes.AsSpan((int)offset, destination.Length).CopyTo(destination);

    public void Write(long offset, ReadOnlySpan<byte> source) => source.CopyTo(Bytes.AsSpan((int)offset));

    public void Flush() => Flushes++;

    public void Discard(long offset, long length)
    {
        Discards++;
        Bytes.AsSpan((int)offset, (int)length).Clear();
    }
}
