namespace SharpVisor.Host.Firecracker;

/// <summary>
/// SharpVisor's own paths on a VMM's API beside Firecracker's: the VMM serves them
/// (<c>ProtectionRoutes</c>, <c>XenStoreRoutes</c>) and the daemon's <c>VmmClient</c> calls them.
/// </summary>
public static class VmmPaths
{
    public const string Attestation = "/attestation";

    public const string Protection = "/sharpvisor/protection";

    public const string XenStore = "/sharpvisor/xenstore";
}
