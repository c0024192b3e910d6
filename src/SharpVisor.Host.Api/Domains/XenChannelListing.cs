namespace SharpVisor.Host.Domains;

/// <summary>The answer to GET /sharpvisor/xen/channels: a Xen domain's event channels to other domains.</summary>
public sealed record XenChannelListing
{
    public required IReadOnlyList<XenChannel> Channels { get; init; }
}
