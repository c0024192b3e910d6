namespace SharpVisor.Xen;

/// <summary>
/// How a domain maps another domain's grants (GNTTABOP_map_grant_ref; docs/xen.md, "Grant
/// mapping"): the granter checks the grant against its own table
/// (<see cref="XenDomain.AcceptGrantMap"/>), keeps it marked in use and hands over its page; the
/// unmap releases it. None of these may throw for a granter that is gone.
/// </summary>
public interface IXenGrantMapLink
{
    /// <summary>Maps grant <paramref name="reference"/> of <paramref name="granter"/>; a GNTST status, and on okay the page.</summary>
    short MapGrant(ushort granter, uint reference, bool readOnly, out XenForeignPage page);

    /// <summary>The domain has mapped <paramref name="page"/> (or failed to): what the link opened for it (a descriptor) may go.</summary>
    void Mapped(in XenForeignPage page);

    /// <summary>The map with <paramref name="token"/> is gone: the granter may clear its in-use flags. One way.</summary>
    void UnmapGrant(ushort granter, ulong token);
}
