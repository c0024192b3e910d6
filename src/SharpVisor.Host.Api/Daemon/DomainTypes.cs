using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// What kind of machine a domain is: a plain PC with virtio devices, or a Xen PVH, HVM or PV domain
/// (the guest sees Xen's hypervisor interface; its disks are vbds, its console hvc0 — docs/xen.md,
/// docs/xen-pv.md).
/// </summary>
public static class DomainTypes
{
    public const string Pc = "pc";

    public const string Pvh = "pvh";

    /// <summary>A Xen HVM domain with PV drivers: the PC machine plus Xen's interface and platform device.</summary>
    public const string Hvm = "hvm";

    /// <summary>A Xen PV domain: the kernel at CPL 3 on direct paging (docs/xen-pv.md).</summary>
    public const string Pv = "pv";

    /// <summary>A driver domain: SharpVisor's blkback in a domain of its own, for other domains' vbds (docs/xen.md, "Driver domains").</summary>
    public const string Driver = "driver";

    public static readonly string[] All = [Pc, Pvh, Hvm, Pv, Driver];

    /// <summary>Whether <paramref name="type"/> is a Xen domain (it has a XenStore and a Xen balloon).</summary>
    public static bool IsXen(string? type) => type is Pvh or Hvm or Pv;

    /// <summary>How the VMM builds a domain of <paramref name="type"/>.</summary>
    public static XenMode XenModeOf(string? type) => type switch
    {
        Pvh => XenMode.Pvh,
        Hvm => XenMode.Hvm,
        Pv => XenMode.Pv,
        Driver => XenMode.Driver,
        _ => XenMode.None,
    };
}
