using SharpVisor.Devices.Virtio;
using SharpVisor.Xen;

namespace SharpVisor.Host.Vmm;

/// <summary>blkback's disk over the same raw image file the virtio disk uses: flush is fsync.</summary>
public sealed class XenDiskImage : IXenDiskImage, IDisposable
{
    private readonly RawDiskImage _image;

    public XenDiskImage(string path, bool readOnly) => _image = new RawDiskImage(path, readOnly);

    public long Size => _image.Size;

    public bool ReadOnly => _image.ReadOnly;

    public void Read(long offset, Span<byte> destination) => _image.Read(offset, destination);

    public void Write(long offset, ReadOnlySpan<byte> source) => _image.Write(offset, source);

    public void Flush() => _image.Flush();

    public void Discard(long offset, long length) => _image.Discard(offset, length);

    public void Dispose() => _image.Dispose();
}
