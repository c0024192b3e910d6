namespace SharpVisor.Xen.Tests;

/// <summary>
/// The inter-domain link with both domains in one process: each call goes straight to the peer's
/// <see cref="XenDomain"/> and <see cref="GrantTable"/>, as the Host's socket link delivers it in
/// the peer's VMM. A domain in <see cref="Gone"/> answers as a dead peer does.
/// </summary>
internal sealed class InProcessInterdomainLink(Dictionary<ushort, (XenDomain Domain, GrantTable Grants)> domains, ushort self) : IXenInterdomainLink, IXenGrantMapLink
{
    public HashSet<ushort> Gone { get; } = [];

    public int Bind(ushort remoteDomain, int remotePort, int localPort) =>
        Peer(remoteDomain) is { } peer ? peer.Domain.AcceptInterdomainBind(self, (uint)remotePort, localPort) : XenErrno.ESRCH;

    public void Send(ushort remoteDomain, int remotePort, int localPort) => Peer(remoteDomain)?.Domain.DeliverInterdomain(self, (uint)remotePort, localPort);

    public void Close(ushort remoteDomain, int remotePort, int localPort) => Peer(remoteDomain)?.Domain.PeerClosed(self, (uint)remotePort, localPort);

    public short CopyFromGrant(ushort granter, uint reference, int offset, Span<byte> destination) =>
        Peer(granter) is { } peer ? peer.Grants.TryCopyFrom(self, reference, offset, destination) : GrantStatus.BadDomain;

    public short CopyToGrant(ushort granter, uint reference, int offset, ReadOnlySpan<byte> source) =>
        Peer(granter) is { } peer ? peer.Grants.TryCopyTo(self, reference, offset, source) : GrantStatus.BadDomain;

    public short MapGrant(ushort granter, uint reference, bool readOnly, out XenForeignPage page)
    {
        page = default;
        return Peer(granter) is { } peer ? peer.Domain.AcceptGrantMap(self, reference, readOnly, out page) : GrantStatus.BadDomain;
    }

    public void Mapped(in XenForeignPage page)
    {
    }

    public void UnmapGrant(ushort granter, ulong token) => Peer(granter)?.Domain.ReleaseGrantMap(self, token);

    private (XenDomain Domain, GrantTable Grants)? Peer(ushort domain) =>
        !Gone.Contains(domain) && domains.TryGetValue(domain, out var peer) ? peer : null;
}
