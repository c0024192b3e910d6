namespace SharpVisor.Xen;

/// <summary>
/// One domain's requests to a XenStore that may live in another process (docs/xen.md, "Driver
/// domains"): every request is made as that domain, so the store's permissions apply to it as
/// they apply to a guest's xs_wire requests.
/// </summary>
public interface IXenStoreClient
{
    /// <summary>The node's value, or null when it is missing, not readable for this domain, or the store is gone.</summary>
    string? Read(string path);

    /// <summary>The node's children, or null (missing, refused, the store gone).</summary>
    IReadOnlyList<string>? Directory(string path);

    /// <summary>Writes (creating the node as this domain's); a refusal or a gone store throws <see cref="XenStoreException"/>.</summary>
    void Write(string path, string value);

    /// <summary>Calls <paramref name="changed"/> on every change at or below <paramref name="path"/> (and once at once), as a watch does.</summary>
    void Watch(string path, Action changed);
}
