using System.Text;

namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    private const int XenVersionCmd = 0;
    private const int XenExtraVersion = 1;
    private const int XenCompileInfo = 2;
    private const int XenCapabilities = 3;
    private const int XenChangeset = 4;
    private const int XenPlatformParameters = 5;
    private const int XenGetFeatures = 6;
    private const int XenPageSize = 7;
    private const int XenGuestHandle = 8;
    private const int XenCommandLine = 9;
    private const int XenBuildId = 10;

    // XENFEAT_* bits of submap 0.
    private const uint FeatureWritablePageTables = 1u << 0;
    private const uint FeatureAutoTranslatedPhysmap = 1u << 2;
    private const uint FeatureHvmCallbackVector = 1u << 8;
    private const uint FeatureHvmSafePvclock = 1u << 9;

    /// <summary>The features an HVM/PVH guest of this hypervisor gets: translated physmap, the callback vector, pvclock.</summary>
    /// <summary>
    /// A PV domain's, as Xen gives every PV guest (Linux 6.1 panics without the last two): PAE tables
    /// above 4 GiB, MMU_PT_UPDATE_PRESERVE_AD, highmem_assist, gnttab_map_avail_bits; not translated,
    /// no callback vector.
    /// </summary>
    public const uint PvFeatures = (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7);

    public const uint Features = FeatureWritablePageTables | FeatureAutoTranslatedPhysmap | FeatureHvmCallbackVector | FeatureHvmSafePvclock;

    private long XenVersion(HypercallFrame frame)
    {
        int command = frame.IntArgument(0);
        ulong buffer = frame.Argument(1);
        switch (command)
        {
            case XenVersionCmd:
                return (XenCpuid.MajorVersion << 16) | XenCpuid.MinorVersion;
            case XenExtraVersion:
                WriteString(frame, buffer, ".0-sharpvisor", 16);
                return 0;
            case XenCompileInfo:
                // compiler[64], compile_by[16], compile_domain[32], compile_date[32]
                var info = new byte[144];
                Encoding.ASCII.GetBytes("dotnet").CopyTo(info, 0);
                Encoding.ASCII.GetBytes("sharpvisor").CopyTo(info, 64);
                frame.WriteBytes(buffer, info);
                return 0;
            case XenCapabilities:
                WriteString(frame, buffer, "hvm-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p", 1024);
                return 0;
            case XenChangeset:
                WriteString(frame, buffer, "sharpvisor", 64);
                return 0;
            case XenPlatformParameters:
                frame.Write(buffer, 0xFFFF_8000_0000_0000UL);   // virt_start: the hypervisor's hole
                return 0;
            case XenGetFeatures:
                uint index = frame.Read<uint>(buffer);
                frame.Write(buffer + 4, index == 0 ? (_pvTables is null ? Features : PvFeatures) : 0u);
                return 0;
            case XenPageSize:
                return 4096;
            case XenGuestHandle:
                frame.WriteBytes(buffer, new byte[16]);
                return 0;
            case XenCommandLine:
            case XenBuildId:
                return -XenErrno.EPERM;   // the hypervisor's own: not for a guest
            default:
                return Unknown(frame, "xen_version command", command);
        }
    }

    private static void WriteString(HypercallFrame frame, ulong buffer, string text, int size)
    {
        var bytes = new byte[size];
        Encoding.ASCII.GetBytes(text).AsSpan(0, Math.Min(text.Length, size - 1)).CopyTo(bytes);
        frame.WriteBytes(buffer, bytes);
    }
}
