namespace SharpVisor.Machine;

/// <summary>
/// One MSI source with its own delivery path (an MSI-X vector of a device). The message may
/// change at any time — the guest re-programs the vector — and the route follows it.
/// </summary>
public interface IMsiRoute : IDisposable
{
    /// <summary>Delivers the MSI <paramref name="address"/>/<paramref name="data"/>, re-pointing the route first when the message changed.</summary>
    void Signal(ulong address, uint data);
}
