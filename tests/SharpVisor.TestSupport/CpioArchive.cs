using System.Text;

namespace SharpVisor.TestSupport;

/// <summary>
/// Writes an uncompressed cpio archive in the "newc" format the Linux initramfs unpacker reads:
/// regular files only, owned by root, each header and body padded to 4 bytes. Appended after
/// the default guest's initrd (sharpvisor run --extra-initrd), it adds files such as /hook.sh.
/// </summary>
public sealed class CpioArchive
{
    private readonly MemoryStream _stream = new();
    private int _inode = 1;

    public CpioArchive AddFile(string path, byte[] contents, int mode = 0x1ED)
    {
        WriteEntry(path, 0x8000 | mode, contents);
        return this;
    }

    public CpioArchive AddFile(string path, string text, int mode = 0x1ED) => AddFile(path, Encoding.UTF8.GetBytes(text), mode);

    /// <summary>The archive with its TRAILER!!! entry.</summary>
    public byte[] ToArray()
    {
        var copy = new CpioArchive();
        _stream.WriteTo(copy._stream);
        copy.WriteEntry("TRAILER!!!", 0, []);
        return copy._stream.ToArray();
    }

    public void WriteTo(string file) => File.WriteAllBytes(file, ToArray());

    private void WriteEntry(string name, int mode, byte[] contents)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name.TrimStart('/') + "\0");
        int[] fields = [_inode++, mode, 0, 0, 1, 0, contents.Length, 0, 0, 0, 0, nameBytes.Length, 0];
        var header = new StringBuilder("070701");
        foreach (int field in fields)
        {
            header.Append(field.ToString("X8", System.Globalization.CultureInfo.InvariantCulture));
        }

        _stream.Write(Encoding.ASCII.GetBytes(header.ToString()));
        _stream.Write(nameBytes);
        Pad();
        _stream.Write(contents);
        Pad();
    }

    private void Pad()
    {
        while (_stream.Length % 4 != 0)
        {
            _stream.WriteByte(0);
        }
    }
}
