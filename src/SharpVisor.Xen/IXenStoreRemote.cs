namespace SharpVisor.Xen;

/// <summary>
/// The stores of other domains, as a guest's own xs_wire connection reaches them (docs/xen.md,
/// "A Linux guest as the driver domain"): each domain's tree lives in its own VMM, so a request for
/// <c>/local/domain/&lt;N&gt;/…</c> that this store does not hold goes to domain N's VMM and runs
/// there as the caller, under that store's permissions. Failures are <see cref="XenStoreException"/>s
/// with the errno the guest gets (ENOENT for a domain nobody runs).
/// </summary>
public interface IXenStoreRemote
{
    byte[] Read(ushort holder, string path);

    IReadOnlyList<string> Directory(ushort holder, string path);

    void Write(ushort holder, string path, string value);

    /// <summary>A watch in <paramref name="holder"/>'s store; each event (the changed path and <paramref name="token"/>) goes to <paramref name="fire"/>.</summary>
    void Watch(ushort holder, string path, string token, Action<string, string> fire);
}
