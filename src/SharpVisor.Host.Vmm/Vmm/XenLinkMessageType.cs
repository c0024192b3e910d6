namespace SharpVisor.Host.Vmm;

/// <summary>The messages of the inter-domain link (docs/xen.md, "Inter-domain").</summary>
internal enum XenLinkMessageType : byte
{
    /// <summary>The first message on a connection: { uint16 caller's domid }.</summary>
    Hello = 1,

    /// <summary>{ uint32 remote port; uint32 caller's port } → { int32 errno }.</summary>
    Bind = 2,

    /// <summary>One way: { uint32 remote port; uint32 caller's port }.</summary>
    Send = 3,

    /// <summary>One way: { uint32 remote port; uint32 caller's port }.</summary>
    Close = 4,

    /// <summary>{ uint32 ref; uint16 offset; uint16 length } → { int16 status; bytes }.</summary>
    GrantRead = 5,

    /// <summary>{ uint32 ref; uint16 offset; uint16 length; bytes } → { int16 status }.</summary>
    GrantWrite = 6,

    /// <summary>The answer to request Id.</summary>
    Reply = 7,

    /// <summary>{ uint32 ref; uint8 read-only } → { int16 status; uint64 token; uint64 file key; int64 offset } (docs/xen.md, "Grant mapping").</summary>
    GrantMap = 8,

    /// <summary>One way: { uint64 token }: the map is gone.</summary>
    GrantUnmap = 9,

    /// <summary>The only message of its own connection: { uint16 caller's domid; uint64 token } → a Reply { int16 status } carrying the memory file (SCM_RIGHTS).</summary>
    MemoryFile = 10,

    /// <summary>A XenStore request made as the caller to the store that holds the path: { uint8 op; path NUL value } → { uint8 0|1; data or errno name } (docs/xen.md, "Driver domains").</summary>
    XenStore = 11,

    /// <summary>One way, store to watcher: { token } — a watch the peer set fired.</summary>
    XenStoreWatchEvent = 12,

    /// <summary>One way, front end to driver domain: "my store holds back-end directories of yours".</summary>
    Introduce = 13,

    /// <summary>{ uint16 count; count × { uint32 ref; uint16 offset; uint16 length; bytes } } → { int16 status }: grant writes done in order, whole.</summary>
    GrantWriteBatch = 14,

    /// <summary>
    /// Front end to a guest driver domain's VMM: { uint8 device index; uint8 read-only; target } →
    /// { uint8 0; back-end path } once that VMM wrote the vbd's back-end directory into its store, or
    /// { uint8 1; errno } (a SharpVisor driver domain holds no store: ENOENT).
    /// </summary>
    XenStoreSeedVbd = 15,
}
