namespace SharpVisor.Xen;

/// <summary>
/// A granted page as the mapping domain receives it: the memory file behind the granter's frame
/// and the page's offset in it, and the granter's token for the map (what the unmap releases).
/// </summary>
public readonly record struct XenForeignPage(ulong Token, int MemFd, long FileOffset)
{
    /// <summary>The granter's guest-physical address of the page (known to the granter only; 0 elsewhere).</summary>
    public ulong Address { get; init; }
}
