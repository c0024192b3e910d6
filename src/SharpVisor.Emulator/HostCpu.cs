using System.Runtime.Intrinsics.X86;

namespace SharpVisor.Emulator;

/// <summary>The host processor's vendor (CPUID leaf 0), the default vendor a guest sees.</summary>
public static class HostCpu
{
    private static readonly Lazy<CpuVendor> s_vendor = new(Detect);

    /// <summary>The host's vendor; Intel when the host is neither (or not x86).</summary>
    public static CpuVendor Vendor => s_vendor.Value;

    /// <summary>"intel" or "amd", as the command line spells a vendor.</summary>
    public static string Name(CpuVendor vendor) => vendor == CpuVendor.Amd ? "amd" : "intel";

    /// <summary>Parses a command-line vendor name ("intel", "amd"); false for anything else.</summary>
    public static bool TryParse(string? text, out CpuVendor vendor)
    {
        switch (text)
        {
            case "intel":
                vendor = CpuVendor.Intel;
                return true;
            case "amd":
                vendor = CpuVendor.Amd;
                return true;
            default:
                vendor = default;
                return false;
        }
    }

    /// <summary>The vendor a CPUID leaf-0 vendor string names (AMD for "AuthenticAMD", Intel otherwise).</summary>
    public static CpuVendor FromVendorString(string vendorString) =>
        vendorString == CpuModel.AmdVendorString ? CpuVendor.Amd : CpuVendor.Intel;

    private static CpuVendor Detect()
    {
        if (!X86Base.IsSupported)
        {
            return CpuVendor.Intel;
        }

        (int _, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        Span<byte> text = stackalloc byte[12];
        BitConverter.TryWriteBytes(text, ebx);
        BitConverter.TryWriteBytes(text[4..], edx);
        BitConverter.TryWriteBytes(text[8..], ecx);
        return FromVendorString(System.Text.Encoding.ASCII.GetString(text));
    }
}
