namespace SharpVisor.Xen;

/// <summary>
/// How a domain reaches other domains (each in its own VMM process): the calls its hypercalls
/// make on a peer. The peer validates everything that concerns its own state (the binding of its
/// port, its grant table) with <see cref="XenDomain.AcceptInterdomainBind"/>,
/// <see cref="XenDomain.DeliverInterdomain"/>, <see cref="XenDomain.PeerClosed"/> and its
/// <see cref="GrantTable"/>. None of these may throw for a peer that is gone: they answer the errno
/// or GNTST status a missing domain gets.
/// </summary>
public interface IXenInterdomainLink
{
    /// <summary>bind_interdomain's other half: 0, or a positive Xen errno (ESRCH: no such domain).</summary>
    int Bind(ushort remoteDomain, int remotePort, int localPort);

    /// <summary>A send on an interdomain port; one way, dropped when the peer is gone.</summary>
    void Send(ushort remoteDomain, int remotePort, int localPort);

    /// <summary>The local end closed: the remote end goes back to unbound; one way.</summary>
    void Close(ushort remoteDomain, int remotePort, int localPort);

    /// <summary>Copies from a page <paramref name="granter"/> granted this domain; a GNTST status.</summary>
    short CopyFromGrant(ushort granter, uint reference, int offset, Span<byte> destination);

    /// <summary>Copies into a page <paramref name="granter"/> granted this domain writable; a GNTST status.</summary>
    short CopyToGrant(ushort granter, uint reference, int offset, ReadOnlySpan<byte> source);

    /// <summary>
    /// Copies into pages <paramref name="granter"/> granted this domain, in order, as one request
    /// (one GNTTABOP_copy batch is one hypercall): the granter does the whole batch or, for a caller
    /// that dies before it arrives, none of it. The first failing status ends the batch; else okay.
    /// (A driver domain publishes a ring response and its index this way: docs/xen.md, "Driver domains".)
    /// </summary>
    short CopyToGrants(ushort granter, IReadOnlyList<(uint Reference, int Offset, byte[] Data)> copies)
    {
        ArgumentNullException.ThrowIfNull(copies);
        foreach ((uint reference, int offset, byte[] data) in copies)
        {
            short status = CopyToGrant(granter, reference, offset, data);
            if (status != GrantStatus.Okay)
            {
                return status;
            }
        }

        return GrantStatus.Okay;
    }
}
