using System.Buffers.Binary;
using System.Globalization;

namespace SharpVisor.Xen;

/// <summary>
/// blkback in a driver domain (docs/xen.md, "Driver domains"): it serves one vbd of a front end
/// in another domain's process and reaches that domain only as a Xen kernel would — XenStore
/// requests made as the driver domain (<see cref="IXenStoreClient"/>, the store's permissions
/// apply), an interdomain event channel, and grant copies that the front end's VMM checks against
/// the front end's grant table. The ring itself is read and answered by grant copies too (no page
/// is mapped): the header, then each request slot, then each response and the new rsp_prod.
/// The handshake is Xen's backends' frontend_changed, as in <see cref="XenBackendDevice"/>.
/// </summary>
public sealed class XenDriverBlockBackend : IDisposable
{
    private const int PageSize = 4096;
    private const int ReqProdOffset = 0;
    private const int ReqEventOffset = 4;
    private const int RspProdOffset = 8;
    private const int RspEventOffset = 12;

    private readonly object _lock = new();
    private readonly XenDomain _domain;
    private readonly IXenStoreClient _store;
    private readonly IXenDiskImage _image;
    private readonly Action<string>? _log;
    private readonly XenBlkifRequests _requests;
    private readonly byte[] _response = new byte[16];
    private readonly XenBackendWorker _worker;
    private XenbusState _frontendState = XenbusState.Unknown;
    private EventChannel? _channel;
    private uint _ringRef;
    private uint _requestConsumer;
    private uint _responseProducer;
    private bool _failed;
    private bool _disposed;

    /// <summary>Takes the vbd the toolstack set up at <paramref name="backendPath"/> (in <paramref name="frontendDomain"/>'s store) and enters InitWait.</summary>
    public XenDriverBlockBackend(XenDomain domain, IXenStoreClient store, ushort frontendDomain, string backendPath, IXenDiskImage image, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(backendPath);
        ArgumentNullException.ThrowIfNull(image);
        _domain = domain;
        _store = store;
        _image = image;
        _log = log;
        FrontendDomain = frontendDomain;
        BackendPath = backendPath;
        string? frontendPath = store.Read(backendPath + "/frontend");
        string prefix = XenStore.DomainPath(frontendDomain) + "/device/vbd/";
        if (frontendPath is null || !frontendPath.StartsWith(prefix, StringComparison.Ordinal)
            || !int.TryParse(frontendPath.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int id))
        {
            throw new XenStoreException("EINVAL", $"{backendPath}/frontend is not a vbd of domain {frontendDomain}: '{frontendPath}'");
        }

        FrontendPath = frontendPath;
        DeviceId = id;
        Name = store.Read(backendPath + "/dev") is { Length: > 0 and <= 8 } dev ? dev : id.ToString(CultureInfo.InvariantCulture);
        _worker = new XenBackendWorker($"xen-dd-blkback-{frontendDomain}-{Name}", Process);
        _requests = new XenBlkifRequests(image, new ForeignGrants(domain, frontendDomain), Counters, Log);
        WriteBackend("removable", "0");
        WriteBackend("bootable", "1");
        WriteBackend("mode", image.ReadOnly ? "r" : "w");
        WriteBackend("feature-flush-cache", "1");
        WriteBackend("feature-discard", image.ReadOnly ? "0" : "1");
        WriteBackend("discard-granularity", PageSize.ToString(CultureInfo.InvariantCulture));
        WriteBackend("discard-alignment", "0");
        WriteBackend("discard-secure", "0");
        WriteBackend("feature-persistent", "0");
        WriteBackend("feature-max-indirect-segments", XenBlockBackend.MaxIndirectSegments.ToString(CultureInfo.InvariantCulture));
        WriteBackend("hotplug-status", "connected");
        SwitchState(XenbusState.InitWait);
        store.Watch(FrontendPath + "/state", () => _worker.Wake());
    }

    public ushort FrontendDomain { get; }

    public int DeviceId { get; }

    public string Name { get; }

    public string FrontendPath { get; }

    public string BackendPath { get; }

    public XenbusState State { get; private set; }

    public bool Failed => _failed;

    /// <summary>Requests, bytes, errors, notifications, connects; for metrics.</summary>
    public Machine.ExitCounters Counters { get; } = new();

    public void Start()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
        }

        _worker.Start();
    }

    /// <summary>One pass: follow the front end's state, then serve the ring if connected.</summary>
    public void Process()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            try
            {
                FollowFrontend();
                if (State == XenbusState.Connected && !_failed && _channel is not null)
                {
                    ServeRing();
                }
            }
            catch (XenStoreException e)
            {
                // The front end's store refused or is gone (its VMM ended): this device stops.
                Fail($"xenstore: {e.Message}");
            }
        }
    }

    public void Dispose()
    {
        _worker.Stop();
        lock (_lock)
        {
            if (!_disposed)
            {
                _disposed = true;
                Disconnect();
            }
        }

        _worker.Dispose();
    }

    private void Log(string line) => _log?.Invoke($"xen driver-domain blkback {FrontendDomain}/{Name}: {line}");

    private void WriteBackend(string key, string value) => _store.Write($"{BackendPath}/{key}", value);

    private void SwitchState(XenbusState state)
    {
        State = state;
        WriteBackend("state", ((int)state).ToString(CultureInfo.InvariantCulture));
    }

    private uint? ReadFrontendNumber(string key) =>
        uint.TryParse(_store.Read($"{FrontendPath}/{key}"), NumberStyles.None, CultureInfo.InvariantCulture, out uint value) ? value : null;

    private void FollowFrontend()
    {
        XenbusState state = ReadFrontendNumber("state") is { } value && value <= 8 ? (XenbusState)value : XenbusState.Unknown;
        if (state == _frontendState)
        {
            return;
        }

        _frontendState = state;
        switch (state)
        {
            case XenbusState.Initialising:
            case XenbusState.Closed when State is XenbusState.Closing or XenbusState.Connected:
                // The front end starts over (a reconnect), or finished closing: wait for it again.
                Disconnect();
                _failed = false;
                SwitchState(state == XenbusState.Closed ? XenbusState.Closed : XenbusState.InitWait);
                break;

            case XenbusState.Initialised:
            case XenbusState.Connected:
                if (State is XenbusState.InitWait or XenbusState.Closed && Connect())
                {
                    SwitchState(XenbusState.Connected);
                    Counters.Increment("connects");
                }

                break;

            case XenbusState.Closing:
                Disconnect();
                SwitchState(XenbusState.Closing);
                break;

            default:
                Disconnect();
                SwitchState(XenbusState.Closed);
                break;
        }
    }

    private bool Connect()
    {
        string? order = _store.Read($"{FrontendPath}/ring-page-order");
        string? protocol = _store.Read($"{FrontendPath}/protocol");
        if (order is not null && order != "0")
        {
            Fail($"ring-page-order {order}: only one-page rings are offered");
            return false;
        }

        if (protocol is not null && protocol != "x86_64-abi")
        {
            Fail($"protocol '{protocol}' is not offered (x86_64-abi only)");
            return false;
        }

        if (ReadFrontendNumber("ring-ref") is not { } ringRef || ReadFrontendNumber("event-channel") is not { } port)
        {
            Fail("ring-ref or event-channel is missing or not a number");
            return false;
        }

        Span<byte> header = stackalloc byte[16];
        short status = _domain.CopyFromGrantForKernel(FrontendDomain, ringRef, 0, header);
        if (status != GrantStatus.Okay)
        {
            Fail($"ring-ref {ringRef}: grant copy status {status}");
            return false;
        }

        try
        {
            _channel = _domain.BindInterdomainForKernel(FrontendDomain, port, () => _worker.Wake());
        }
        catch (XenException e)
        {
            Fail($"event-channel {port}: {e.Message}");
            return false;
        }

        _ringRef = ringRef;
        _requestConsumer = BinaryPrimitives.ReadUInt32LittleEndian(header[RspProdOffset..]);
        _responseProducer = _requestConsumer;
        uint waiting = BinaryPrimitives.ReadUInt32LittleEndian(header[ReqProdOffset..]) - _requestConsumer;
        if (waiting != 0)
        {
            // A ring another incarnation served: what it left unanswered is served again (docs/xen.md, "Driver domains").
            Counters.Add("requests-taken-over", waiting);
            Log($"took over the ring at rsp_prod {_requestConsumer} with {waiting} request(s) waiting");
        }

        WriteBackend("sectors", _requests.CapacitySectors.ToString(CultureInfo.InvariantCulture));
        WriteBackend("info", (_image.ReadOnly ? 4 : 0).ToString(CultureInfo.InvariantCulture));
        WriteBackend("sector-size", XenBlockBackend.SectorSize.ToString(CultureInfo.InvariantCulture));
        WriteBackend("physical-sector-size", XenBlockBackend.SectorSize.ToString(CultureInfo.InvariantCulture));
        return true;
    }

    private void Disconnect()
    {
        if (_channel is not null)
        {
            _domain.CloseForKernel(_channel);
            _channel = null;
        }
    }

    private void Fail(string reason)
    {
        if (_failed)
        {
            return;
        }

        _failed = true;
        Counters.Increment("failures");
        Log($"{reason}; the device stops");
        Disconnect();
        try
        {
            WriteBackend("error", reason.Length > 256 ? reason[..256] : reason);
            SwitchState(XenbusState.Closing);
        }
        catch (XenStoreException)
        {
            // The store is gone or refuses: the device is stopped regardless.
        }
    }

    /// <summary>ring.h's back half by grant copies: consume up to req_prod, answer, push, notify, re-arm req_event.</summary>
    private void ServeRing()
    {
        int served = 0;
        bool notify = false;
        while (true)
        {
            if (ReadIndex(ReqProdOffset) is not { } producer)
            {
                return;
            }

            if (producer - _responseProducer > XenBlockBackend.RingEntries)
            {
                Fail($"req_prod {producer} is more than a ring ahead of rsp_prod {_responseProducer}");
                return;
            }

            uint published = _responseProducer;
            while (_requestConsumer != producer)
            {
                int slot = XenBlockBackend.RingHeaderSize + ((int)(_requestConsumer & (XenBlockBackend.RingEntries - 1)) * XenBlockBackend.EntrySize);
                byte[] request = _requests.Request;
                if (!Copy(_domain.CopyFromGrantForKernel(FrontendDomain, _ringRef, slot, request), "request slot"))
                {
                    return;
                }

                _requestConsumer++;
                byte op = request[0];
                short status = _requests.Handle(op);
                BinaryPrimitives.WriteUInt64LittleEndian(_response, BinaryPrimitives.ReadUInt64LittleEndian(request.AsSpan(8)));
                _response[8] = op == XenBlockBackend.OpIndirect ? request[1] : op;
                _response[9] = 0;
                BinaryPrimitives.WriteInt16LittleEndian(_response.AsSpan(10), status);
                int responseSlot = XenBlockBackend.RingHeaderSize + ((int)(_responseProducer & (XenBlockBackend.RingEntries - 1)) * XenBlockBackend.EntrySize);

                // The response and rsp_prod in one batch: a driver domain killed in between would leave a
                // slot that holds a response where its successor expects an unanswered request.
                byte[] producerBytes = new byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(producerBytes, _responseProducer + 1);
                if (!Copy(_domain.CopyToGrantsForKernel(FrontendDomain, [(_ringRef, responseSlot, _response.ToArray()), (_ringRef, RspProdOffset, producerBytes)]), "response"))
                {
                    return;
                }

                _responseProducer++;
                served++;
            }

            // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY (rsp_prod is already out, one response at a time)
            if (_responseProducer != published)
            {
                if (ReadIndex(RspEventOffset) is not { } wanted)
                {
                    return;
                }

                notify |= _responseProducer - wanted < _responseProducer - published;
            }

            // RING_FINAL_CHECK_FOR_REQUESTS
            if (ReadIndex(ReqProdOffset) is not { } again)
            {
                return;
            }

            if (again != _requestConsumer)
            {
                if (served >= XenBlockBackend.RingEntries * 8)
                {
                    _worker.Wake();
                    break;
                }

                continue;
            }

            if (!WriteIndex(ReqEventOffset, _requestConsumer + 1) || ReadIndex(ReqProdOffset) is not { } last)
            {
                return;
            }

            if (last == _requestConsumer)
            {
                break;
            }
        }

        if (notify && _channel is not null)
        {
            Counters.Increment("notifications");
            _domain.SendForKernel(_channel);
        }
    }

    private uint? ReadIndex(int offset)
    {
        Span<byte> value = stackalloc byte[4];
        return Copy(_domain.CopyFromGrantForKernel(FrontendDomain, _ringRef, offset, value), "ring index") ? BinaryPrimitives.ReadUInt32LittleEndian(value) : null;
    }

    private bool WriteIndex(int offset, uint index)
    {
        Span<byte> value = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(value, index);
        return Copy(_domain.CopyToGrantForKernel(FrontendDomain, _ringRef, offset, value), "ring index");
    }

    /// <summary>A ring copy that fails (the grant revoked, the front end gone) fails the device.</summary>
    private bool Copy(short status, string what)
    {
        if (status == GrantStatus.Okay)
        {
            return true;
        }

        Fail($"{what}: grant copy of ring-ref {_ringRef} answered {status}");
        return false;
    }

    /// <summary>The data pages' copies: checked by the front end's VMM against its grant table for this domain.</summary>
    private sealed class ForeignGrants(XenDomain domain, ushort frontend) : IXenGrantCopies
    {
        public void CopyFrom(uint reference, int offset, Span<byte> destination) =>
            Check(domain.CopyFromGrantForKernel(frontend, reference, offset, destination), reference);

        public void CopyTo(uint reference, int offset, ReadOnlySpan<byte> source) =>
            Check(domain.CopyToGrantForKernel(frontend, reference, offset, source), reference);

        private static void Check(short status, uint reference)
        {
            if (status != GrantStatus.Okay)
            {
                throw new GrantTableException("EACCES", $"grant {reference}: copy answered {status}", status);
            }
        }
    }
}
