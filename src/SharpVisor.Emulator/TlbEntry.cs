namespace SharpVisor.Emulator;

/// <summary>
/// One software-TLB entry: the linear page it maps for reads, writes and fetches (a tag
/// that never matches when the access kind is not cached) and the host pointer offset.
/// Pages holding cached code have no write tag, so stores to them take the slow path that
/// invalidates the decoded blocks.
/// </summary>
internal struct TlbEntry
{
    public const ulong Invalid = 1;

    public ulong ReadPage;
    public ulong WritePage;
    public ulong FetchPage;

    /// <summary>Host address = linear address + Addend.</summary>
    public nint Addend;
    public ulong PhysicalPage;

    public void Clear()
    {
        ReadPage = Invalid;
        WritePage = Invalid;
        FetchPage = Invalid;
        Addend = 0;
        PhysicalPage = Invalid;
    }
}
