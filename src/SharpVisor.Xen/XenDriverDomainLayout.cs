using System.Globalization;

namespace SharpVisor.Xen;

/// <summary>
/// What the toolstack writes for a vbd served by a driver domain (xl's
/// <c>disk = ['...,backend=NAME']</c>; docs/xen.md, "Driver domains"): the front end's
/// <c>device/vbd/N</c> (owned by the front end, readable by the driver domain) names the driver
/// domain's <c>/local/domain/&lt;dd&gt;/backend/vbd/&lt;fe&gt;/N</c> (owned by the driver domain,
/// readable by the front end), which carries the toolstack's keys and <c>params</c>, the image.
/// </summary>
public static class XenDriverDomainLayout
{
    public static string FrontendPath(ushort frontend, int deviceId) =>
        $"{XenStore.DomainPath(frontend)}/device/vbd/{deviceId.ToString(CultureInfo.InvariantCulture)}";

    public static string BackendPath(ushort backend, ushort frontend, int deviceId) =>
        $"{XenStore.DomainPath(backend)}/backend/vbd/{frontend.ToString(CultureInfo.InvariantCulture)}/{deviceId.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>xvda is 51712, xvdb 51728, ... (202:0, 202:16).</summary>
    public static int DeviceId(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, 15);
        return (XenBlockBackend.XvdMajor << 8) | (index << 4);
    }

    /// <summary>Writes both directories as Dom0 (the toolstack) and returns the back end's path.</summary>
    public static string SeedVbd(XenStore store, ushort frontend, ushort backend, int index, string target, bool readOnly)
    {
        string backendPath = SeedBackend(store, frontend, backend, index, target, physicalDevice: null, readOnly);
        SeedFrontend(store, frontend, backend, index);
        return backendPath;
    }

    /// <summary>
    /// The front end's half, as Dom0: <c>device/vbd/N</c> (owned by the front end, readable by the
    /// driver domain) naming the back end's directory.
    /// </summary>
    public static string SeedFrontend(XenStore store, ushort frontend, ushort backend, int index)
    {
        ArgumentNullException.ThrowIfNull(store);
        CheckPair(frontend, backend);
        int id = DeviceId(index);
        string dd = backend.ToString(CultureInfo.InvariantCulture);
        string frontendPath = FrontendPath(frontend, id);
        store.Mkdir(0, 0, frontendPath);
        store.SetPerms(0, 0, frontendPath, ["n" + frontend.ToString(CultureInfo.InvariantCulture), "r" + dd]);
        store.Write(0, frontendPath + "/backend", BackendPath(backend, frontend, id));
        store.Write(0, frontendPath + "/backend-id", dd);
        store.Write(0, frontendPath + "/virtual-device", id.ToString(CultureInfo.InvariantCulture));
        store.Write(0, frontendPath + "/device-type", "disk");
        store.Write(0, frontendPath + "/state", ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture));
        return frontendPath;
    }

    /// <summary>
    /// The back end's half, as Dom0: <c>/local/domain/&lt;dd&gt;/backend/vbd/&lt;fe&gt;/N</c>, every level
    /// the driver domain's, the device readable by the front end. <paramref name="physicalDevice"/>
    /// (<c>major:minor</c> in hex, as Linux's blkback reads it) is what a hotplug script would write
    /// for a Linux driver domain's blkback: none runs here, so the toolstack writes it.
    /// </summary>
    public static string SeedBackend(XenStore store, ushort frontend, ushort backend, int index, string target, string? physicalDevice, bool readOnly)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(target);
        CheckPair(frontend, backend);
        int id = DeviceId(index);
        string fe = frontend.ToString(CultureInfo.InvariantCulture);
        string dd = backend.ToString(CultureInfo.InvariantCulture);
        string backendPath = BackendPath(backend, frontend, id);

        // libxl makes every level the driver domain's own.
        store.Mkdir(0, 0, backendPath);
        foreach (string level in new[] { $"{XenStore.DomainPath(backend)}/backend", $"{XenStore.DomainPath(backend)}/backend/vbd", $"{XenStore.DomainPath(backend)}/backend/vbd/{fe}" })
        {
            store.SetPerms(0, 0, level, ["n" + dd]);
        }

        store.SetPerms(0, 0, backendPath, ["n" + dd, "r" + fe]);
        store.Write(0, backendPath + "/frontend", FrontendPath(frontend, id));
        store.Write(0, backendPath + "/frontend-id", fe);
        store.Write(0, backendPath + "/online", "1");
        store.Write(0, backendPath + "/params", target);
        store.Write(0, backendPath + "/mode", readOnly ? "r" : "w");
        store.Write(0, backendPath + "/dev", "xvd" + (char)('a' + index));
        store.Write(0, backendPath + "/type", physicalDevice is null ? "file" : "phy");
        store.Write(0, backendPath + "/device-type", "disk");
        if (physicalDevice is not null)
        {
            store.Write(0, backendPath + "/physical-device", physicalDevice);
        }

        store.Write(0, backendPath + "/state", ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture));
        return backendPath;
    }

    /// <summary>
    /// The driver domain's own disk a <c>phy:</c> target names, as <c>physical-device</c>
    /// (<c>/dev/xvdb</c> → <c>ca:10</c>, major 202): only its xvda..xvdp; null for anything else.
    /// </summary>
    public static string? PhysicalDevice(string target)
    {
        const string Prefix = "/dev/xvd";
        if (target is null || target.Length != Prefix.Length + 1 || !target.StartsWith(Prefix, StringComparison.Ordinal) || target[^1] is < 'a' or > 'p')
        {
            return null;
        }

        int minor = (target[^1] - 'a') << 4;
        return $"{XenBlockBackend.XvdMajor:x}:{minor:x}";
    }

    private static void CheckPair(ushort frontend, ushort backend)
    {
        if (backend == 0 || backend == frontend || backend >= XenDomain.DomidSelf)
        {
            throw new ArgumentOutOfRangeException(nameof(backend), $"domain {backend} cannot be the driver domain of domain {frontend}");
        }
    }
}
