namespace SharpVisor.Host.Domains;

/// <summary>The answer to GET /sharpvisor/xenstore: the node asked for, then (when listing) everything below it.</summary>
public sealed record XenStoreListing
{
    public required IReadOnlyList<XenStoreNode> Nodes { get; init; }
}
