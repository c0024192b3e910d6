using System.Runtime.CompilerServices;

namespace SharpVisor.Xen;

public sealed partial class XenDomain
{
    public const ushort DomidSelf = 0x7FF0;

    /// <summary>VIRQs bound per vCPU (the rest are global and go to vCPU 0).</summary>
    private const int VirqTimer = 0;
    private const int VirqDebug = 1;
    private const int VirqXenoprof = 7;
    private const int VirqXenpmu = 13;

    private const int EvtchnBindInterdomain = 0;
    private const int EvtchnBindVirq = 1;
    private const int EvtchnBindPirq = 2;
    private const int EvtchnClose = 3;
    private const int EvtchnSend = 4;
    private const int EvtchnStatus = 5;
    private const int EvtchnAllocUnbound = 6;
    private const int EvtchnBindIpi = 7;
    private const int EvtchnBindVcpu = 8;
    private const int EvtchnUnmask = 9;

    private readonly EventChannel?[] _channels;
    private ulong _sharedInfo;

    /// <summary>The shared_info page's guest-physical address once the guest mapped it, else 0.</summary>
    public ulong SharedInfoAddress => Volatile.Read(ref _sharedInfo);

    /// <summary>A port of this domain, for tests and back ends.</summary>
    public EventChannel? GetChannel(int port)
    {
        lock (_lock)
        {
            return port > 0 && port < _channels.Length ? _channels[port] : null;
        }
    }

    /// <summary>
    /// Opens a port whose other end is a back end in SharpVisor (Dom0): the toolstack's
    /// alloc_unbound plus the back end's bind, in one. A guest send calls <paramref name="onGuestSend"/>.
    /// </summary>
    public int OpenBackendPort(Action onGuestSend)
    {
        ArgumentNullException.ThrowIfNull(onGuestSend);
        lock (_lock)
        {
            EventChannel channel = AllocateLocked();
            channel.State = EventChannelState.Interdomain;
            channel.RemoteDomain = 0;
            channel.OnGuestSend = onGuestSend;
            return channel.Port;
        }
    }

    /// <summary>
    /// A back end's bind_interdomain to the port the guest allocated for it (alloc_unbound with
    /// remote domain 0, the number it published in XenStore): the port becomes interdomain and a
    /// guest send on it calls <paramref name="onGuestSend"/>. A port that is not unbound for Dom0
    /// is refused with EINVAL, as Xen refuses it.
    /// </summary>
    public EventChannel BindBackendPort(uint guestPort, Action onGuestSend)
    {
        ArgumentNullException.ThrowIfNull(onGuestSend);
        lock (_lock)
        {
            EventChannel channel = ChannelLocked(guestPort);
            if (channel.State != EventChannelState.Unbound || channel.RemoteDomain != 0)
            {
                throw new XenException(XenErrno.EINVAL, $"port {guestPort} is not unbound for domain 0");
            }

            channel.State = EventChannelState.Interdomain;
            channel.OnGuestSend = onGuestSend;
            return channel;
        }
    }

    /// <summary>The back end lets go of a port it bound: if the guest still has it, it is unbound again.</summary>
    public void UnbindBackendPort(EventChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        lock (_lock)
        {
            if (GetLocked(channel.Port) == channel && channel.OnGuestSend is not null)
            {
                channel.State = EventChannelState.Unbound;
                channel.OnGuestSend = null;
            }
        }
    }

    /// <summary>The back end's notify on a port it bound; nothing when the guest has closed it since (its number may be reused).</summary>
    public void NotifyGuest(EventChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        bool open;
        lock (_lock)
        {
            open = GetLocked(channel.Port) == channel;
        }

        if (open)
        {
            SetPending(channel);
        }
    }

    /// <summary>The back end's notify: sets the port pending in the guest (and raises the upcall).</summary>
    public void NotifyGuest(int port)
    {
        EventChannel? channel = GetChannel(port);
        if (channel is not null)
        {
            SetPending(channel);
        }
    }

    public bool TryGetPendingUpcall(int vcpuId, out byte vector)
    {
        vector = 0;
        if ((uint)vcpuId >= (uint)_vcpus.Length)
        {
            return false;
        }

        XenVcpu vcpu = _vcpus[vcpuId];
        if (_pvCpu is not null)
        {
            // PV: the event callback, when pending and not masked; the vector only wakes the CPU's event path.
            vector = PvUpcallVector;
            return _pvCpu.UpcallDeliverable(vcpuId, VcpuInfoAddress(vcpu));
        }

        if (vcpuId == 0 && _callbackGsi is not null)
        {
            // A GSI callback is lowered once the guest cleared upcall_pending (Xen: at the next interrupt check).
            UpdateCallbackLine();
        }

        ulong via = Volatile.Read(ref _params[HvmParam.CallbackIrq]);
        vector = vcpu.UpcallVector != 0
            ? vcpu.UpcallVector
            : via >> HvmParam.CallbackTypeShift == HvmParam.CallbackTypeVector ? (byte)via : (byte)0;
        ulong info = VcpuInfoAddress(vcpu);
        return vector != 0 && info != 0 && Volatile.Read(ref Byte(info + SharedInfoLayout.UpcallPending)) != 0;
    }

    private long EventChannelOp(HypercallFrame frame)
    {
        int command = frame.IntArgument(0);
        ulong arg = frame.Argument(1);
        Counters.Increment($"evtchn-{command}");
        switch (command)
        {
            case EvtchnAllocUnbound:
            {
                ushort dom = frame.Read<ushort>(arg);
                ushort remote = frame.Read<ushort>(arg + 2);
                CheckSelf(dom);
                int port;
                lock (_lock)
                {
                    EventChannel channel = AllocateLocked();
                    channel.State = EventChannelState.Unbound;
                    channel.RemoteDomain = remote == DomidSelf ? DomainId : remote;
                    port = channel.Port;
                }

                WriteOrClose(frame, arg + 4, port);
                return 0;
            }

            case EvtchnBindInterdomain:
                return BindInterdomain(frame, arg);

            case EvtchnBindVirq:
            {
                uint virq = frame.Read<uint>(arg);
                uint vcpuId = frame.Read<uint>(arg + 4);
                int port = BindVirq(virq, vcpuId);
                WriteOrClose(frame, arg + 8, port);
                return 0;
            }

            case EvtchnBindIpi:
            {
                uint vcpuId = frame.Read<uint>(arg);
                CheckVcpu(vcpuId);
                int port;
                lock (_lock)
                {
                    EventChannel channel = AllocateLocked();
                    channel.State = EventChannelState.Ipi;
                    channel.NotifyVcpu = (int)vcpuId;
                    port = channel.Port;
                }

                WriteOrClose(frame, arg + 4, port);
                return 0;
            }

            case EvtchnClose:
                Close(frame.Read<uint>(arg));
                return 0;

            case EvtchnSend:
                return Send(frame.Read<uint>(arg));

            case EvtchnUnmask:
                Unmask(frame.Read<uint>(arg));
                return 0;

            case EvtchnBindVcpu:
            {
                uint port = frame.Read<uint>(arg);
                uint vcpuId = frame.Read<uint>(arg + 4);
                CheckVcpu(vcpuId);
                lock (_lock)
                {
                    EventChannel channel = ChannelLocked(port);
                    if (channel.State is EventChannelState.Virq && IsPerVcpuVirq(channel.Virq) || channel.State == EventChannelState.Ipi)
                    {
                        throw new XenException(XenErrno.EINVAL, $"port {port} is bound to its vCPU");
                    }

                    channel.NotifyVcpu = (int)vcpuId;
                }

                return 0;
            }

            case EvtchnStatus:
                return Status(frame, arg);

            case EvtchnBindPirq:
            default:
                // init_control (the FIFO ABI) answers -ENOSYS, so Linux uses the 2-level ABI.
                return Unknown(frame, "event_channel_op command", command);
        }
    }

    private void WriteOrClose(HypercallFrame frame, ulong address, int port)
    {
        try
        {
            frame.Write(address, (uint)port);
        }
        catch (XenException)
        {
            Close((uint)port);
            throw;
        }
    }

    private long BindInterdomain(HypercallFrame frame, ulong arg)
    {
        ushort remoteDom = frame.Read<ushort>(arg);
        uint remotePort = frame.Read<uint>(arg + 4);
        int port;
        if (IsForeign(remoteDom))
        {
            // Another domain's VMM, through the daemon's link (XenDomain.Interdomain).
            port = BindForeign(remoteDom, remotePort);
            WriteOrClose(frame, arg + 8, port);
            return 0;
        }

        lock (_lock)
        {
            EventChannel remote = ChannelLocked(remotePort);
            if (remote.State != EventChannelState.Unbound || remote.RemoteDomain != DomainId)
            {
                throw new XenException(XenErrno.EINVAL, $"port {remotePort} is not unbound for this domain");
            }

            EventChannel local = AllocateLocked();
            local.State = EventChannelState.Interdomain;
            local.RemoteDomain = DomainId;
            local.RemotePort = remote.Port;
            remote.State = EventChannelState.Interdomain;
            remote.RemotePort = local.Port;
            port = local.Port;
        }

        WriteOrClose(frame, arg + 8, port);
        return 0;
    }

    private int BindVirq(uint virq, uint vcpuId)
    {
        if (virq >= XenVcpu.VirqCount)
        {
            throw new XenException(XenErrno.EINVAL, $"VIRQ {virq} does not exist");
        }

        CheckVcpu(vcpuId);
        if (!IsPerVcpuVirq((int)virq) && vcpuId != 0)
        {
            throw new XenException(XenErrno.EINVAL, $"global VIRQ {virq} binds to vCPU 0 only");
        }

        lock (_lock)
        {
            XenVcpu vcpu = _vcpus[vcpuId];
            if (vcpu.VirqPorts[virq] != 0)
            {
                throw new XenException(XenErrno.EEXIST, $"VIRQ {virq} of vCPU {vcpuId} is already bound");
            }

            EventChannel channel = AllocateLocked();
            channel.State = EventChannelState.Virq;
            channel.Virq = (int)virq;
            channel.NotifyVcpu = (int)vcpuId;
            vcpu.VirqPorts[virq] = channel.Port;
            return channel.Port;
        }
    }

    private static bool IsPerVcpuVirq(int virq) => virq is VirqTimer or VirqDebug or VirqXenoprof or VirqXenpmu;

    private void Close(uint port)
    {
        (ushort Domain, int Port)? foreign = null;
        lock (_lock)
        {
            EventChannel channel = ChannelLocked(port);
            if (IsBoundTo(channel, channel.RemoteDomain, channel.RemotePort) && IsForeign(channel.RemoteDomain))
            {
                foreign = (channel.RemoteDomain, channel.RemotePort);
            }

            if (channel.State == EventChannelState.Virq)
            {
                _vcpus[channel.NotifyVcpu].VirqPorts[channel.Virq] = 0;
            }
            else if (channel.State == EventChannelState.Interdomain && channel.RemoteDomain == DomainId
                     && GetLocked(channel.RemotePort) is { } peer)
            {
                // A loopback's other end goes back to waiting for a bind, as in Xen.
                peer.State = EventChannelState.Unbound;
                peer.RemotePort = 0;
            }

            _channels[port] = null;
        }

        if (foreign is { } remote)
        {
            _link?.Close(remote.Domain, remote.Port, (int)port);
        }

        ulong shared = SharedInfoAddress;
        if (shared != 0)
        {
            // A closed port loses its pending bit, so a later user of the number starts clean.
            Interlocked.And(ref Word(shared + SharedInfoLayout.EvtchnPending + ((port / 64) * 8)), ~(1UL << (int)(port % 64)));
        }
    }

    private long Send(uint port)
    {
        EventChannel? target;
        Action? backend;
        (ushort Domain, int Port)? foreign = null;
        lock (_lock)
        {
            EventChannel channel = ChannelLocked(port);
            backend = channel.OnGuestSend;
            if (IsBoundTo(channel, channel.RemoteDomain, channel.RemotePort) && IsForeign(channel.RemoteDomain))
            {
                foreign = (channel.RemoteDomain, channel.RemotePort);
            }

            target = channel.State switch
            {
                EventChannelState.Ipi => channel,
                EventChannelState.Interdomain when backend is null && channel.RemoteDomain == DomainId => GetLocked(channel.RemotePort),
                EventChannelState.Interdomain or EventChannelState.Unbound => null,
                _ => throw new XenException(XenErrno.EINVAL, $"port {port} ({channel.State}) cannot be sent on"),
            };
        }

        Counters.Increment("evtchn-sends");
        if (foreign is { } remote && _link is { } link)
        {
            Counters.Increment("interdomain-sends");
            link.Send(remote.Domain, remote.Port, (int)port);
        }

        backend?.Invoke();
        if (target is not null)
        {
            SetPending(target);
        }

        return 0;
    }

    private void Unmask(uint port)
    {
        EventChannel channel;
        lock (_lock)
        {
            channel = ChannelLocked(port);
        }

        ulong shared = SharedInfoAddress;
        if (shared == 0)
        {
            return;
        }

        ulong bit = 1UL << (int)(port % 64);
        ulong offset = (port / 64) * 8;
        ulong oldMask = Interlocked.And(ref Word(shared + SharedInfoLayout.EvtchnMask + offset), ~bit);
        if ((oldMask & bit) != 0 && (Volatile.Read(ref Word(shared + SharedInfoLayout.EvtchnPending + offset)) & bit) != 0)
        {
            RaiseSelector(channel.NotifyVcpu, (int)(port / 64));
        }
    }

    private long Status(HypercallFrame frame, ulong arg)
    {
        ushort dom = frame.Read<ushort>(arg);
        uint port = frame.Read<uint>(arg + 4);
        CheckSelf(dom);
        var status = new byte[16];
        lock (_lock)
        {
            EventChannel? channel = port < (uint)_channels.Length ? _channels[port] : null;
            if (port >= (uint)_channels.Length)
            {
                throw new XenException(XenErrno.EINVAL, $"port {port} is out of range");
            }

            EventChannelState state = channel?.State ?? EventChannelState.Closed;
            BitConverter.TryWriteBytes(status.AsSpan(0), (uint)state);
            BitConverter.TryWriteBytes(status.AsSpan(4), (uint)(channel?.NotifyVcpu ?? 0));
            switch (state)
            {
                case EventChannelState.Unbound:
                    BitConverter.TryWriteBytes(status.AsSpan(8), channel!.RemoteDomain);
                    break;
                case EventChannelState.Interdomain:
                    BitConverter.TryWriteBytes(status.AsSpan(8), channel!.RemoteDomain);
                    BitConverter.TryWriteBytes(status.AsSpan(12), (uint)channel.RemotePort);
                    break;
                case EventChannelState.Virq:
                    BitConverter.TryWriteBytes(status.AsSpan(8), (uint)channel!.Virq);
                    break;
            }
        }

        frame.WriteBytes(arg + 8, status);
        return 0;
    }

    /// <summary>Sends VIRQ <paramref name="virq"/> to <paramref name="vcpuId"/> if the guest bound it.</summary>
    private void RaiseVirq(int vcpuId, int virq)
    {
        int port = Volatile.Read(ref _vcpus[vcpuId].VirqPorts[virq]);
        if (port != 0 && GetChannel(port) is { } channel)
        {
            SetPending(channel);
        }
    }

    /// <summary>Xen's 2-level set_pending: pending bit, then (unless masked) the selector bit, then upcall_pending.</summary>
    private void SetPending(EventChannel channel)
    {
        ulong shared = SharedInfoAddress;
        if (shared == 0)
        {
            return;
        }

        int port = channel.Port;
        ulong bit = 1UL << (port % 64);
        ulong offset = (ulong)(port / 64) * 8;
        ulong old = Interlocked.Or(ref Word(shared + SharedInfoLayout.EvtchnPending + offset), bit);
        if ((old & bit) != 0 || (Volatile.Read(ref Word(shared + SharedInfoLayout.EvtchnMask + offset)) & bit) != 0)
        {
            return;
        }

        RaiseSelector(channel.NotifyVcpu, port / 64);
    }

    private void RaiseSelector(int vcpuId, int word)
    {
        XenVcpu vcpu = _vcpus[vcpuId];
        ulong info = VcpuInfoAddress(vcpu);
        if (info == 0)
        {
            return;
        }

        ulong bit = 1UL << word;
        if ((Interlocked.Or(ref Word(info + SharedInfoLayout.PendingSelector), bit) & bit) == 0)
        {
            MarkUpcallPending(vcpu, info);
        }
    }

    private void MarkUpcallPending(XenVcpu vcpu, ulong info)
    {
        if (Interlocked.Exchange(ref Byte(info + SharedInfoLayout.UpcallPending), 1) == 0)
        {
            Counters.Increment("upcalls");
            _host?.WakeVcpu(vcpu.Id);
            if (vcpu.Id == 0)
            {
                UpdateCallbackLine();
            }
        }
    }

    /// <summary>Where <paramref name="vcpu"/>'s vcpu_info is: registered, else its shared_info slot, else nowhere (0).</summary>
    private ulong VcpuInfoAddress(XenVcpu vcpu)
    {
        ulong registered = vcpu.VcpuInfoAddress;
        if (registered != 0)
        {
            return registered;
        }

        ulong shared = SharedInfoAddress;
        return shared != 0 && vcpu.Id < SharedInfoLayout.LegacyVcpus ? shared + (ulong)(vcpu.Id * SharedInfoLayout.VcpuInfoSize) : 0;
    }

    private EventChannel AllocateLocked()
    {
        for (int port = 1; port < _channels.Length; port++)
        {
            if (_channels[port] is null)
            {
                var channel = new EventChannel(port);
                _channels[port] = channel;
                return channel;
            }
        }

        throw new XenException(XenErrno.ENOSPC, "no free event channel port");
    }

    private EventChannel ChannelLocked(uint port) =>
        port > 0 && port < (uint)_channels.Length && _channels[port] is { } channel
            ? channel
            : throw new XenException(XenErrno.EINVAL, $"port {port} is not open");

    private EventChannel? GetLocked(int port) => port > 0 && port < _channels.Length ? _channels[port] : null;

    private void CheckVcpu(uint vcpuId)
    {
        if (vcpuId >= (uint)_vcpus.Length)
        {
            throw new XenException(XenErrno.ENOENT, $"vCPU {vcpuId} does not exist");
        }
    }

    private void CheckSelf(ushort dom)
    {
        if (dom != DomidSelf && dom != DomainId)
        {
            throw new XenException(XenErrno.EPERM, $"domain {dom} is not this domain");
        }
    }

    /// <summary>An aligned 64-bit word of guest RAM for atomic bit operations (the address was validated when mapped).</summary>
    private ref ulong Word(ulong address) => ref Unsafe.As<byte, ulong>(ref Memory.GetSpan(address, 8)[0]);

    private ref byte Byte(ulong address) => ref Memory.GetSpan(address, 1)[0];
}
