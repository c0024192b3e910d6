using System.Globalization;

namespace SharpVisor.Xen;

/// <summary>
/// The XenStore nodes a toolstack writes for a new domain, as xl does: its directory (readable
/// by it), name and id, the directories it owns (device, data, control), memory targets, and
/// Dom0's backend directory.
/// </summary>
public static class XenStoreLayout
{
    public static void SeedDomain(XenStore store, ushort domain, string name, ulong memoryKiB, int vcpus)
    {
        ArgumentNullException.ThrowIfNull(store);
        string id = domain.ToString(CultureInfo.InvariantCulture);
        string home = XenStore.DomainPath(domain);
        string readable = "r" + id;
        store.Mkdir(0, 0, "/local/domain/0/backend");
        store.Write(0, "/local/domain/0/name", "Domain-0");
        store.Write(0, "/local/domain/0/domid", "0");
        store.Mkdir(0, 0, home);
        store.SetPerms(0, 0, home, ["n0", readable]);
        store.Write(0, $"{home}/name", name);
        store.Write(0, $"{home}/domid", id);
        store.Write(0, $"{home}/memory/static-max", memoryKiB.ToString(CultureInfo.InvariantCulture));
        store.Write(0, $"{home}/memory/target", memoryKiB.ToString(CultureInfo.InvariantCulture));
        for (int cpu = 0; cpu < vcpus; cpu++)
        {
            store.Write(0, $"{home}/cpu/{cpu}/availability", "online");
        }

        foreach (string owned in new[] { "device", "data", "control", "error", "drivers", "attr" })
        {
            store.Mkdir(0, 0, $"{home}/{owned}");
            store.SetPerms(0, 0, $"{home}/{owned}", ["n" + id]);
        }

        store.Write(0, $"{home}/control/platform-feature-xs_reset_watches", "1");
    }
}
