using System.Buffers.Binary;
using System.Globalization;
using SharpVisor.Memory;

namespace SharpVisor.Xen;

/// <summary>
/// Dom0's blkback for one virtual block device (xen/include/public/io/blkif.h): the xenbus
/// directories of the pair, the state handshake (InitWait → the front end's Initialised →
/// Connected), and the blkif ring — requests read, write, flush and discard whose data moves by
/// grant copy between the guest's granted pages and the disk image. The ring is a hostile
/// guest's: each request is copied out of the shared page once and checked (segments, sector
/// ranges, grants) before anything is done; a bad request is answered BLKIF_RSP_ERROR, broken
/// ring indices or an unusable ring/port fail the device (one log line, state Closing) — never
/// the host. Work runs on one worker thread, woken by the guest's notifications and by
/// XenStore watches; <see cref="Process"/> does one pass (tests call it without the thread).
/// </summary>
public sealed class XenBlockBackend : IDisposable
{
    /// <summary>Xen's major number for xvd disks: xvda is 202:0 (device id 51712), xvdb 202:16, ...</summary>
    public const int XvdMajor = 202;
    public const int SectorSize = 512;
    public const int MaxSegments = 11;
    public const int RingEntries = 32;
    public const int RingHeaderSize = 64;
    public const int EntrySize = 112;

    public const byte OpRead = 0;
    public const byte OpWrite = 1;
    public const byte OpWriteBarrier = 2;
    public const byte OpFlushDiskCache = 3;
    public const byte OpDiscard = 5;
    public const byte OpIndirect = 6;

    public const short StatusOkay = 0;
    public const short StatusError = -1;
    public const short StatusNotSupported = -2;

    private const int VdiskReadOnly = 4;
    private const int PageSize = 4096;
    private const int ReqProdOffset = 0;
    private const int ReqEventOffset = 4;
    private const int RspProdOffset = 8;
    private const int RspEventOffset = 12;
    private const int MaxLoggedErrors = 10;

    private readonly XenDomain _domain;
    private readonly XenStore _store;
    private readonly GrantTable _grants;
    private readonly IXenDiskImage _image;
    private readonly GuestMemory _memory;
    private readonly Action<string>? _log;
    private readonly object _lock = new();
    private readonly AutoResetEvent _work = new(false);
    private readonly Action<string, string> _onWatch;
    private readonly byte[] _request = new byte[EntrySize];
    private readonly byte[] _data = new byte[MaxSegments * PageSize];
    private Thread? _worker;
    private volatile bool _stopping;
    private XenbusState _frontendState = XenbusState.Unknown;
    private EventChannel? _channel;
    private uint _ringRef;
    private ulong _ringPage;
    private uint _requestConsumer;
    private uint _responseProducer;
    private bool _failed;
    private bool _disposed;

    /// <summary>Writes the device's XenStore directories (the toolstack's part) and enters InitWait.</summary>
    /// <param name="index">0 for xvda, 1 for xvdb, ... (at most 15).</param>
    public XenBlockBackend(XenDomain domain, XenStore store, GrantTable grants, IXenDiskImage image, int index, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(grants);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, 15);
        _domain = domain;
        _store = store;
        _grants = grants;
        _image = image;
        _memory = domain.Memory;
        _log = log;
        _onWatch = (_, _) => _work.Set();
        DeviceId = (XvdMajor << 8) | (index << 4);
        Name = "xvd" + (char)('a' + index);
        string dom = domain.DomainId.ToString(CultureInfo.InvariantCulture);
        string id = DeviceId.ToString(CultureInfo.InvariantCulture);
        FrontendPath = $"{XenStore.DomainPath(domain.DomainId)}/device/vbd/{id}";
        BackendPath = $"/local/domain/0/backend/vbd/{dom}/{id}";
        Seed(dom, id);
        store.AddWatch(0, FrontendPath + "/state", "blkback", _onWatch);
    }

    /// <summary>The xenbus device id (the front end's virtual-device): 51712 for xvda.</summary>
    public int DeviceId { get; }

    /// <summary>The guest's name for the disk: xvda, xvdb, ...</summary>
    public string Name { get; }

    public string FrontendPath { get; }

    public string BackendPath { get; }

    /// <summary>Requests by op, bytes moved, errors, notifications; for metrics.</summary>
    public Machine.ExitCounters Counters { get; } = new();

    public XenbusState State { get; private set; }

    public bool Failed => _failed;

    public long CapacitySectors => _image.Size / SectorSize;

    /// <summary>Starts the worker thread that serves the device.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_worker is not null || _disposed)
            {
                return;
            }

            _worker = new Thread(Run) { IsBackground = true, Name = $"xen-blkback-{Name}" };
            _worker.Start();
        }

        _work.Set();
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
                if (_channel is not null && !_failed)
                {
                    ServeRing();
                }
            }
            catch (Exception e) when (e is GuestMemoryException or XenException or XenStoreException or GrantTableException)
            {
                // Checked before use, so a bug of ours if it happens: the device stops, the host carries on.
                Fail($"{e.GetType().Name}: {e.Message}");
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _work.Set();
        if (_worker is not null && _worker != Thread.CurrentThread)
        {
            _worker.Join();
        }

        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Disconnect();
            _store.RemoveWatches(_onWatch);
        }

        _work.Dispose();
    }

    private void Run()
    {
        while (!_stopping)
        {
            _work.WaitOne();
            if (!_stopping)
            {
                Process();
            }
        }
    }

    private void Seed(string dom, string id)
    {
        // The front end's directory belongs to the guest (device/ is its own), readable by Dom0.
        _store.Mkdir(0, 0, FrontendPath);
        _store.Write(0, FrontendPath + "/backend", BackendPath);
        _store.Write(0, FrontendPath + "/backend-id", "0");
        _store.Write(0, FrontendPath + "/virtual-device", id);
        _store.Write(0, FrontendPath + "/device-type", "disk");
        _store.Write(0, FrontendPath + "/state", ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture));

        // The back end's belongs to Dom0 and the guest may read it.
        _store.Mkdir(0, 0, BackendPath);
        _store.SetPerms(0, 0, BackendPath, ["n0", "r" + dom]);
        _store.Write(0, BackendPath + "/frontend", FrontendPath);
        _store.Write(0, BackendPath + "/frontend-id", dom);
        _store.Write(0, BackendPath + "/online", "1");
        _store.Write(0, BackendPath + "/removable", "0");
        _store.Write(0, BackendPath + "/bootable", "1");
        _store.Write(0, BackendPath + "/dev", Name);
        _store.Write(0, BackendPath + "/type", "file");
        _store.Write(0, BackendPath + "/mode", _image.ReadOnly ? "r" : "w");
        _store.Write(0, BackendPath + "/device-type", "disk");
        _store.Write(0, BackendPath + "/feature-flush-cache", "1");
        _store.Write(0, BackendPath + "/feature-discard", _image.ReadOnly ? "0" : "1");
        _store.Write(0, BackendPath + "/discard-granularity", PageSize.ToString(CultureInfo.InvariantCulture));
        _store.Write(0, BackendPath + "/discard-alignment", "0");
        _store.Write(0, BackendPath + "/discard-secure", "0");
        _store.Write(0, BackendPath + "/feature-persistent", "0");
        _store.Write(0, BackendPath + "/hotplug-status", "connected");
        SwitchState(XenbusState.InitWait);
    }

    private void SwitchState(XenbusState state)
    {
        State = state;
        _store.Write(0, BackendPath + "/state", ((int)state).ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Xen blkback's frontend_changed: act on each change of the front end's state.</summary>
    private void FollowFrontend()
    {
        string? text = _store.TryReadString(FrontendPath + "/state");
        XenbusState state = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value is >= 0 and <= 8
            ? (XenbusState)value
            : XenbusState.Unknown;
        if (state == _frontendState)
        {
            return;
        }

        _frontendState = state;
        switch (state)
        {
            case XenbusState.Initialising:
                if (State == XenbusState.Closed)
                {
                    // The front end starts over (a reconnect after a close).
                    _failed = false;
                    SwitchState(XenbusState.InitWait);
                }

                break;

            case XenbusState.Initialised:
            case XenbusState.Connected:
                if (State == XenbusState.InitWait)
                {
                    Connect();
                }

                break;

            case XenbusState.Closing:
                Disconnect();
                SwitchState(XenbusState.Closing);
                break;

            case XenbusState.Closed:
            case XenbusState.Unknown:
                Disconnect();
                SwitchState(XenbusState.Closed);
                break;
        }
    }

    /// <summary>Maps the ring the front end granted and binds its port, then tells it the disk's geometry.</summary>
    private void Connect()
    {
        string? order = _store.TryReadString(FrontendPath + "/ring-page-order");
        string? protocol = _store.TryReadString(FrontendPath + "/protocol");
        if (order is not null && order != "0")
        {
            Fail($"ring-page-order {order}: only one-page rings are offered");
            return;
        }

        if (protocol is not null && protocol != "x86_64-abi")
        {
            Fail($"protocol '{protocol}' is not offered (x86_64-abi only)");
            return;
        }

        if (!uint.TryParse(_store.TryReadString(FrontendPath + "/ring-ref"), NumberStyles.None, CultureInfo.InvariantCulture, out uint ringRef)
            || !uint.TryParse(_store.TryReadString(FrontendPath + "/event-channel"), NumberStyles.None, CultureInfo.InvariantCulture, out uint port))
        {
            Fail("ring-ref or event-channel is missing or not a number");
            return;
        }

        ulong page;
        try
        {
            page = _grants.Map(0, ringRef, write: true);
        }
        catch (GrantTableException e)
        {
            Fail($"ring-ref {ringRef}: {e.Message}");
            return;
        }

        try
        {
            _channel = _domain.BindBackendPort(port, () => _work.Set());
        }
        catch (XenException e)
        {
            _grants.Unmap(ringRef, write: true);
            Fail($"event-channel {port}: {e.Message}");
            return;
        }

        _ringRef = ringRef;
        _ringPage = page;
        _requestConsumer = 0;
        _responseProducer = 0;
        _store.Write(0, BackendPath + "/sectors", CapacitySectors.ToString(CultureInfo.InvariantCulture));
        _store.Write(0, BackendPath + "/info", (_image.ReadOnly ? VdiskReadOnly : 0).ToString(CultureInfo.InvariantCulture));
        _store.Write(0, BackendPath + "/sector-size", SectorSize.ToString(CultureInfo.InvariantCulture));
        _store.Write(0, BackendPath + "/physical-sector-size", SectorSize.ToString(CultureInfo.InvariantCulture));
        SwitchState(XenbusState.Connected);
        Counters.Increment("connects");
    }

    private void Disconnect()
    {
        if (_channel is not null)
        {
            _domain.UnbindBackendPort(_channel);
            _channel = null;
            _ringPage = 0;
            try
            {
                _grants.Unmap(_ringRef, write: true);
            }
            catch (GrantTableException)
            {
                // The guest's table no longer holds the entry: nothing of ours to clear.
            }
        }
    }

    /// <summary>The device stops serving: one log line, the ring let go, state Closing (xenbus_dev_fatal's effect).</summary>
    private void Fail(string reason)
    {
        if (_failed)
        {
            return;
        }

        _failed = true;
        Counters.Increment("failures");
        _log?.Invoke($"xen blkback {Name}: {reason}; the device stops");
        Disconnect();
        try
        {
            _store.Write(0, BackendPath + "/error", reason.Length > 256 ? reason[..256] : reason);
            SwitchState(XenbusState.Closing);
        }
        catch (XenStoreException)
        {
            // The store refused (quota): the state stays; the device is stopped regardless.
        }
    }

    /// <summary>
    /// The back half of ring.h: consume requests up to req_prod (never more than a ring ahead of
    /// our responses), answer each, push the responses, notify if the guest asked (rsp_event),
    /// and re-arm req_event before the final check for late requests.
    /// </summary>
    private void ServeRing()
    {
        int served = 0;
        bool notify = false;
        while (true)
        {
            Span<byte> ring = _memory.GetSpan(_ringPage, PageSize);
            uint producer = Volatile.Read(ref Index(ring, ReqProdOffset));
            if (producer - _responseProducer > RingEntries)
            {
                Fail($"req_prod {producer} is more than a ring ahead of rsp_prod {_responseProducer}");
                return;
            }

            while (_requestConsumer != producer)
            {
                int slot = (int)(_requestConsumer & (RingEntries - 1));
                ring.Slice(RingHeaderSize + (slot * EntrySize), EntrySize).CopyTo(_request);
                _requestConsumer++;
                ulong id = BinaryPrimitives.ReadUInt64LittleEndian(_request.AsSpan(8));
                byte op = _request[0];
                short status = Handle(op);
                Span<byte> response = ring.Slice(RingHeaderSize + ((int)(_responseProducer & (RingEntries - 1)) * EntrySize), 16);
                BinaryPrimitives.WriteUInt64LittleEndian(response, id);
                response[8] = op;
                BinaryPrimitives.WriteInt16LittleEndian(response[10..], status);
                _responseProducer++;
                served++;
            }

            // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY
            uint old = Volatile.Read(ref Index(ring, RspProdOffset));
            Volatile.Write(ref Index(ring, RspProdOffset), _responseProducer);
            Interlocked.MemoryBarrier();
            uint wanted = Volatile.Read(ref Index(ring, RspEventOffset));
            notify |= _responseProducer - wanted < _responseProducer - old;

            // RING_FINAL_CHECK_FOR_REQUESTS
            if (Volatile.Read(ref Index(ring, ReqProdOffset)) != _requestConsumer)
            {
                if (served >= RingEntries * 8)
                {
                    _work.Set();   // a busy guest: let the thread look up (dispose) and come back
                    break;
                }

                continue;
            }

            Volatile.Write(ref Index(ring, ReqEventOffset), _requestConsumer + 1);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref Index(ring, ReqProdOffset)) == _requestConsumer)
            {
                break;
            }
        }

        if (notify && _channel is not null)
        {
            Counters.Increment("notifications");
            _domain.NotifyGuest(_channel);
        }
    }

    /// <summary>One request, already copied out of the ring into <see cref="_request"/>: its status.</summary>
    private short Handle(byte op)
    {
        Counters.Increment("requests");
        try
        {
            switch (op)
            {
                case OpRead:
                case OpWrite:
                    return ReadWrite(op == OpWrite);

                case OpFlushDiskCache:
                    _image.Flush();
                    Counters.Increment("flushes");
                    return StatusOkay;

                case OpDiscard:
                    return Discard();

                default:
                    // Barriers and indirect segments are not offered; anything else is unknown.
                    return Refuse(StatusNotSupported, $"operation {op} is not supported");
            }
        }
        catch (GrantTableException e)
        {
            return Refuse(StatusError, $"grant: {e.Message}");
        }
        catch (IOException e)
        {
            return Refuse(StatusError, $"disk: {e.Message}");
        }
    }

    /// <summary>
    /// blkif_request_rw: nr_segments at 1, sector_number at 16, segments { gref, first_sect,
    /// last_sect } from 24. Every segment is checked, and the whole range against the disk,
    /// before any byte moves.
    /// </summary>
    private short ReadWrite(bool write)
    {
        int segments = _request[1];
        if (segments is 0 or > MaxSegments)
        {
            return Refuse(StatusError, $"{segments} segments");
        }

        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(_request.AsSpan(16));
        int bytes = 0;
        for (int i = 0; i < segments; i++)
        {
            int first = _request[28 + (i * 8)];
            int last = _request[29 + (i * 8)];
            if (first > last || last >= PageSize / SectorSize)
            {
                return Refuse(StatusError, $"segment {i} sectors {first}..{last} leave the page");
            }

            bytes += (last - first + 1) * SectorSize;
        }

        ulong count = (ulong)(bytes / SectorSize);
        if (sector > (ulong)CapacitySectors || count > (ulong)CapacitySectors - sector)
        {
            return Refuse(StatusError, $"sectors {sector}+{count} are beyond the disk's {CapacitySectors}");
        }

        if (write && _image.ReadOnly)
        {
            return Refuse(StatusError, "write to a read-only disk");
        }

        long offset = (long)sector * SectorSize;
        Span<byte> data = _data.AsSpan(0, bytes);
        if (!write)
        {
            _image.Read(offset, data);
        }

        int at = 0;
        for (int i = 0; i < segments; i++)
        {
            uint grant = BinaryPrimitives.ReadUInt32LittleEndian(_request.AsSpan(24 + (i * 8)));
            int first = _request[28 + (i * 8)];
            int length = (_request[29 + (i * 8)] - first + 1) * SectorSize;
            if (write)
            {
                _grants.CopyFrom(0, grant, first * SectorSize, data.Slice(at, length));
            }
            else
            {
                _grants.CopyTo(0, grant, first * SectorSize, data.Slice(at, length));
            }

            at += length;
        }

        if (write)
        {
            _image.Write(offset, data);
            Counters.Add("write-bytes", bytes);
        }
        else
        {
            Counters.Add("read-bytes", bytes);
        }

        Counters.Increment(write ? "writes" : "reads");
        return StatusOkay;
    }

    /// <summary>blkif_request_discard: sector_number at 16, nr_sectors at 24.</summary>
    private short Discard()
    {
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(_request.AsSpan(16));
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(_request.AsSpan(24));
        if (_image.ReadOnly)
        {
            return Refuse(StatusNotSupported, "discard on a read-only disk");
        }

        if (sector > (ulong)CapacitySectors || count > (ulong)CapacitySectors - sector)
        {
            return Refuse(StatusError, $"discard of sectors {sector}+{count} beyond the disk's {CapacitySectors}");
        }

        if (count > 0)
        {
            _image.Discard((long)sector * SectorSize, (long)count * SectorSize);
        }

        Counters.Increment("discards");
        return StatusOkay;
    }

    private short Refuse(short status, string reason)
    {
        Counters.Increment("errors");
        if (Counters["errors"] <= MaxLoggedErrors)
        {
            _log?.Invoke($"xen blkback {Name}: request refused: {reason}");
        }

        return status;
    }

    private static ref uint Index(Span<byte> ring, int offset) =>
        ref System.Runtime.CompilerServices.Unsafe.As<byte, uint>(ref ring[offset]);
}
