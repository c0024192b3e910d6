namespace SharpVisor.Xen;

/// <summary>
/// One port of a domain: its binding, the vCPU it notifies, and — for a port whose other end
/// is a back end in SharpVisor (Dom0) — what a guest's send on it does.
/// </summary>
public sealed class EventChannel
{
    public EventChannel(int port) => Port = port;

    public int Port { get; }

    public EventChannelState State { get; internal set; }

    public int NotifyVcpu { get; internal set; }

    /// <summary>The remote domain (unbound: allowed; interdomain: bound).</summary>
    public ushort RemoteDomain { get; internal set; }

    /// <summary>Interdomain: the remote port.</summary>
    public int RemotePort { get; internal set; }

    /// <summary>Virq: which virtual IRQ.</summary>
    public int Virq { get; internal set; }

    /// <summary>Called (on the sending vCPU's thread) when the guest sends on this port; Dom0's back end.</summary>
    public Action? OnGuestSend { get; internal set; }
}
