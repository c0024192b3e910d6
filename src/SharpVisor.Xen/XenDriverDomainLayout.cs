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
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(target);
        if (backend == 0 || backend == frontend || backend >= XenDomain.DomidSelf)
        {
            throw new ArgumentOutOfRangeException(nameof(backend), $"domain {backend} cannot be the driver domain of domain {frontend}");
        }

        int id = DeviceId(index);
        string fe = frontend.ToString(CultureInfo.InvariantCulture);
        string dd = backend.ToString(CultureInfo.InvariantCulture);
        string frontendPath = FrontendPath(frontend, id);
        string backendPath = BackendPath(backend, frontend, id);

        store.Mkdir(0, 0, frontendPath);
        store.SetPerms(0, 0, frontendPath, ["n" + fe, "r" + dd]);
        store.Write(0, frontendPath + "/backend", backendPath);
        store.Write(0, frontendPath + "/backend-id", dd);
        store.Write(0, frontendPath + "/virtual-device", id.ToString(CultureInfo.InvariantCulture));
        store.Write(0, frontendPath + "/device-type", "disk");
        store.Write(0, frontendPath + "/state", ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture));

        // The driver domain's directory in the front end's partition: libxl makes every level its own.
        store.Mkdir(0, 0, backendPath);
        foreach (string level in new[] { $"{XenStore.DomainPath(backend)}/backend", $"{XenStore.DomainPath(backend)}/backend/vbd", $"{XenStore.DomainPath(backend)}/backend/vbd/{fe}" })
        {
            store.SetPerms(0, 0, level, ["n" + dd]);
        }

        store.SetPerms(0, 0, backendPath, ["n" + dd, "r" + fe]);
        store.Write(0, backendPath + "/frontend", frontendPath);
        store.Write(0, backendPath + "/frontend-id", fe);
        store.Write(0, backendPath + "/online", "1");
        store.Write(0, backendPath + "/params", target);
        store.Write(0, backendPath + "/mode", readOnly ? "r" : "w");
        store.Write(0, backendPath + "/dev", "xvd" + (char)('a' + index));
        store.Write(0, backendPath + "/type", "file");
        store.Write(0, backendPath + "/device-type", "disk");
        store.Write(0, backendPath + "/state", ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture));
        return backendPath;
    }
}
