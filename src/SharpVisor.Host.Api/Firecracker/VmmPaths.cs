namespace SharpVisor.Host.Firecracker;

/// <summary>
/// SharpVisor's own paths on a VMM's API beside Firecracker's: the VMM serves them
/// (<c>ProtectionRoutes</c>, <c>XenStoreRoutes</c>) and the daemon's <c>VmmClient</c> calls them.
/// </summary>
public static class VmmPaths
{
    public const string Attestation = "/attestation";

    public const string Protection = "/sharpvisor/protection";

    /// <summary>The protection events, streamed one JSON object a line (<see cref="EventsContentType"/>).</summary>
    public const string Events = "/sharpvisor/events";

    public const string EventsContentType = "application/x-ndjson";

    public const string XenStore = "/sharpvisor/xenstore";

    /// <summary>A Xen domain's event channels, inter-domain ones with their peers.</summary>
    public const string XenChannels = "/sharpvisor/xen/channels";
}
