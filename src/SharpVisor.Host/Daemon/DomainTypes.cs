namespace SharpVisor.Host.Daemon;

/// <summary>
/// What kind of machine a domain is: a plain PC with virtio devices, or a Xen PVH domain (the
/// guest sees Xen's hypervisor interface; its disks are vbds, its console hvc0 — docs/xen.md).
/// </summary>
public static class DomainTypes
{
    public const string Pc = "pc";

    public const string Pvh = "pvh";

    public static readonly string[] All = [Pc, Pvh];
}
