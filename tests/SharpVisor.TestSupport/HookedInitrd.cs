namespace SharpVisor.TestSupport;

/// <summary>The default guest's initrd with a /hook.sh (and any other files) appended, as one ramdisk file.</summary>
public static class HookedInitrd
{
    /// <summary>Writes the stock initrd and a cpio archive holding <paramref name="hook"/> as /hook.sh to <paramref name="path"/>.</summary>
    public static string Write(string path, string hook) => Write(path, new CpioArchive().AddFile("hook.sh", hook));

    /// <summary>
    /// Writes the stock initrd, padding to 4 bytes (the kernel reads an appended archive only
    /// from a 4-byte boundary, as --extra-initrd pads it), then <paramref name="extra"/>.
    /// </summary>
    public static string Write(string path, CpioArchive extra)
    {
        ArgumentNullException.ThrowIfNull(extra);
        using FileStream initrd = File.Create(path);
        byte[] stock = File.ReadAllBytes(GuestBootCapability.Initrd);
        initrd.Write(stock);
        initrd.Write(new byte[(4 - (stock.Length % 4)) % 4]);
        initrd.Write(extra.ToArray());
        return path;
    }
}
