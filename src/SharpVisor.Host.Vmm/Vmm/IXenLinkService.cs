namespace SharpVisor.Host.Vmm;

/// <summary>What a domain serves on its inter-domain link beyond event channels and grants (docs/xen.md, "Driver domains").</summary>
internal interface IXenLinkService
{
    /// <summary>A peer's message of one of the service's types: the reply, or null for a one-way message.</summary>
    byte[]? Handle(ushort peer, XenLinkMessageType type, ReadOnlySpan<byte> payload);

    /// <summary>The peer's connections ended (its VMM died or was destroyed).</summary>
    void PeerGone(ushort peer);
}
