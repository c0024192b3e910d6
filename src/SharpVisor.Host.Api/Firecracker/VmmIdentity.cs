using SharpVisor.Host.Vmm;

namespace SharpVisor.Host.Firecracker;

/// <summary>Who a per-domain VMM is: its instance id (the domain name), the numeric domain id and its accelerator choice.</summary>
public sealed record VmmIdentity(string InstanceId, int DomainId, string Accelerator)
{
    /// <summary>Build the machine as a Xen domain (<c>sharpvisor vmm --xen pvh</c>, a pvh domain of the daemon).</summary>
    public XenMode Xen { get; init; } = XenMode.None;

    /// <summary>
    /// The daemon's domains directory, where Xen domains find each other (<c>--xen-link</c>,
    /// docs/xen.md "Inter-domain"); the domain's XenStore domid is then <see cref="DomainId"/>. Null: alone.
    /// </summary>
    public string? XenLinkDirectory { get; init; }

    /// <summary>Attach Firecracker's boot-timer device (<c>sharpvisor firecracker --boot-timer</c>).</summary>
    public bool BootTimer { get; init; }

    public static VmmIdentity Anonymous { get; } = new("anonymous-instance", 0, "auto");
}
