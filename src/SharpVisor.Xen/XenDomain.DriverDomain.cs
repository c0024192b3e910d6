using System.Collections.Concurrent;

namespace SharpVisor.Xen;

/// <summary>
/// A domain whose kernel is SharpVisor's own back end (a driver domain, docs/xen.md "Driver
/// domains"): no vCPU makes its hypercalls, the back end does, through these calls — the same
/// checked paths (bind_interdomain to another domain's port, send, close, GNTTABOP_copy with a
/// foreign grant) a guest kernel's hypercalls take.
/// </summary>
public sealed partial class XenDomain
{
    private readonly ConcurrentDictionary<int, Action> _kernelHandlers = new();

    /// <summary>bind_interdomain to <paramref name="remotePort"/> of <paramref name="remoteDomain"/>; a send from there calls <paramref name="onEvent"/>.</summary>
    public EventChannel BindInterdomainForKernel(ushort remoteDomain, uint remotePort, Action onEvent)
    {
        ArgumentNullException.ThrowIfNull(onEvent);
        if (!IsForeign(remoteDomain))
        {
            throw new XenException(XenErrno.EINVAL, $"domain {remoteDomain} is this domain");
        }

        int port = BindForeign(remoteDomain, remotePort);
        _kernelHandlers[port] = onEvent;
        return GetChannel(port) ?? throw new XenException(XenErrno.EINVAL, $"port {port} was closed during its bind");
    }

    /// <summary>EVTCHNOP_send on a port the kernel bound.</summary>
    public void SendForKernel(EventChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        if (GetChannel(channel.Port) == channel)
        {
            Send((uint)channel.Port);
        }
    }

    /// <summary>EVTCHNOP_close of a port the kernel bound (the remote end goes back to unbound).</summary>
    public void CloseForKernel(EventChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        _kernelHandlers.TryRemove(channel.Port, out _);
        if (GetChannel(channel.Port) == channel)
        {
            Close((uint)channel.Port);
        }
    }

    /// <summary>GNTTABOP_copy from a page <paramref name="granter"/> granted this domain: a GNTST status.</summary>
    public short CopyFromGrantForKernel(ushort granter, uint reference, int offset, Span<byte> destination)
    {
        Counters.Increment("grant-copy-ops");
        return offset < 0 || offset + destination.Length > 4096 ? GrantStatus.BadCopyArg : ReadGrant(granter, reference, offset, destination);
    }

    /// <summary>GNTTABOP_copy into a page <paramref name="granter"/> granted this domain writable: a GNTST status.</summary>
    public short CopyToGrantForKernel(ushort granter, uint reference, int offset, ReadOnlySpan<byte> source)
    {
        Counters.Increment("grant-copy-ops");
        return offset < 0 || offset + source.Length > 4096 ? GrantStatus.BadCopyArg : WriteGrant(granter, reference, offset, source);
    }

    /// <summary>A batch of copies into pages <paramref name="granter"/> granted this domain, done whole by the granter: the first failing GNTST status, or okay.</summary>
    public short CopyToGrantsForKernel(ushort granter, IReadOnlyList<(uint Reference, int Offset, byte[] Data)> copies)
    {
        ArgumentNullException.ThrowIfNull(copies);
        if (copies.Any(c => c.Offset < 0 || c.Offset + c.Data.Length > 4096))
        {
            return GrantStatus.BadCopyArg;
        }

        Counters.Add("grant-copy-ops", copies.Count);
        if (!IsForeign(granter))
        {
            return GrantStatus.PermissionDenied;
        }

        Counters.Add("grant-copy-foreign", copies.Count);
        return _link?.CopyToGrants(granter, copies) ?? GrantStatus.BadDomain;
    }

    /// <summary>A port the kernel bound was set pending by its peer: the kernel's handler runs (on the link's thread).</summary>
    private void OnKernelEvent(EventChannel channel)
    {
        if (_kernelHandlers.TryGetValue(channel.Port, out Action? handler))
        {
            handler();
        }
    }
}
