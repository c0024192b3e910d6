using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>The default guest's initrd with a /hook.sh appended (an xl.cfg takes one ramdisk file).</summary>
internal static class HookedInitrd
{
    /// <summary>Writes the stock initrd, padding to 4 bytes, and a cpio archive holding <paramref name="hook"/> to <paramref name="path"/>.</summary>
    public static string Write(string path, string hook)
    {
        using FileStream initrd = File.Create(path);
        byte[] stock = File.ReadAllBytes(GuestBootCapability.Initrd);
        initrd.Write(stock);
        initrd.Write(new byte[(4 - (stock.Length % 4)) % 4]);
        initrd.Write(new CpioArchive().AddFile("hook.sh", hook).ToArray());
        return path;
    }
}
