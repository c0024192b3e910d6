using System.Globalization;
using SharpVisor.Memory;

namespace SharpVisor.Xen;

/// <summary>
/// What Dom0's split-driver back ends share (blkback, netback): the xenbus pair of directories
/// the toolstack writes (the front end's owned by the guest, the back end's by Dom0 and readable
/// by the guest), the state handshake of Xen's backends' frontend_changed (InitWait → the front
/// end's Initialised/Connected → Connected; Closing/Closed disconnect; Initialising after Closed
/// starts over), failure (one log line, the `error` node, Closing), and one worker thread woken by
/// the guest's notifications and by the XenStore watch on the front end's state. All work runs
/// under one lock in <see cref="Process"/>, which tests call directly without the thread.
/// </summary>
public abstract class XenBackendDevice : IDisposable
{
    private readonly object _lock = new();
    private readonly XenBackendWorker _worker;
    private readonly Action<string, string> _onWatch;
    private readonly Action<string>? _log;
    private XenbusState _frontendState = XenbusState.Unknown;
    private bool _failed;
    private bool _disposed;

    /// <param name="type">The xenbus device type: vbd, vif.</param>
    /// <param name="driver">The back end's name for logs and its thread: blkback, netback.</param>
    protected XenBackendDevice(XenDomain domain, XenStore store, GrantTable grants, string type, string driver, int deviceId, string name, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(grants);
        Domain = domain;
        Store = store;
        Grants = grants;
        Memory = domain.Memory;
        DeviceId = deviceId;
        Name = name;
        Driver = driver;
        _log = log;
        _worker = new XenBackendWorker($"xen-{driver}-{name}", Process);
        _onWatch = (_, _) => _worker.Wake();
        string dom = domain.DomainId.ToString(CultureInfo.InvariantCulture);
        string id = deviceId.ToString(CultureInfo.InvariantCulture);
        FrontendPath = $"{XenStore.DomainPath(domain.DomainId)}/device/{type}/{id}";
        BackendPath = $"/local/domain/0/backend/{type}/{dom}/{id}";
    }

    /// <summary>The xenbus device id (the number in device/vbd/51712, device/vif/0).</summary>
    public int DeviceId { get; }

    /// <summary>The guest's name for the device (xvda, eth0), for logs and metrics.</summary>
    public string Name { get; }

    public string FrontendPath { get; }

    public string BackendPath { get; }

    /// <summary>Requests, bytes, errors, notifications; for metrics.</summary>
    public Machine.ExitCounters Counters { get; } = new();

    public XenbusState State { get; private set; }

    public bool Failed => _failed;

    protected XenDomain Domain { get; }

    protected XenStore Store { get; }

    protected GrantTable Grants { get; }

    protected GuestMemory Memory { get; }

    private string Driver { get; }

    /// <summary>Starts the worker thread that serves the device.</summary>
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

    /// <summary>One pass: follow the front end's state, then serve the rings if connected.</summary>
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
                if (State == XenbusState.Connected && !_failed)
                {
                    Serve();
                }
            }
            catch (Exception e) when (e is GuestMemoryException or XenException or XenStoreException or GrantTableException)
            {
                // Checked before use, so a bug of ours if it happens: the device stops, the host carries on
                // (counted: the fuzzers assert it never happens).
                Counters.Increment("internal-errors");
                Fail($"{e.GetType().Name}: {e.Message}");
            }
        }
    }

    public void Dispose()
    {
        _worker.Stop();
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Disconnect();
            Store.RemoveWatches(_onWatch);
        }

        OnDisposed();
        _worker.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Writes both directories (the toolstack's part), enters InitWait and watches the front end; the derived constructor's last step.</summary>
    protected void Publish(IEnumerable<(string Key, string Value)> frontend, IEnumerable<(string Key, string Value)> backend)
    {
        string dom = Domain.DomainId.ToString(CultureInfo.InvariantCulture);

        // The front end's directory belongs to the guest (device/ is its own), readable by Dom0.
        Store.Mkdir(0, 0, FrontendPath);
        Store.Write(0, FrontendPath + "/backend", BackendPath);
        Store.Write(0, FrontendPath + "/backend-id", "0");
        foreach ((string key, string value) in frontend)
        {
            Store.Write(0, $"{FrontendPath}/{key}", value);
        }

        Store.Write(0, FrontendPath + "/state", ((int)XenbusState.Initialising).ToString(CultureInfo.InvariantCulture));

        // The back end's belongs to Dom0 and the guest may read it.
        Store.Mkdir(0, 0, BackendPath);
        Store.SetPerms(0, 0, BackendPath, ["n0", "r" + dom]);
        Store.Write(0, BackendPath + "/frontend", FrontendPath);
        Store.Write(0, BackendPath + "/frontend-id", dom);
        Store.Write(0, BackendPath + "/online", "1");
        foreach ((string key, string value) in backend)
        {
            WriteBackend(key, value);
        }

        Store.Write(0, BackendPath + "/hotplug-status", "connected");
        SwitchState(XenbusState.InitWait);
        Store.AddWatch(0, FrontendPath + "/state", Driver, _onWatch);
    }

    /// <summary>The front end is ready (Initialised or Connected): map its rings, bind its port; false after <see cref="Fail"/>.</summary>
    protected abstract bool Connect();

    /// <summary>Lets go of the rings and the port (idempotent).</summary>
    protected abstract void Disconnect();

    /// <summary>Serves the rings while connected.</summary>
    protected abstract void Serve();

    /// <summary>After the worker stopped and the device disconnected.</summary>
    protected virtual void OnDisposed()
    {
    }

    /// <summary>Asks the worker for another pass (a guest notification, a packet from the host).</summary>
    protected void Wake() => _worker.Wake();

    protected string? ReadFrontend(string key) => Store.TryReadString($"{FrontendPath}/{key}");

    /// <summary>A non-negative decimal node of the front end's, else null.</summary>
    protected uint? ReadFrontendNumber(string key) =>
        uint.TryParse(ReadFrontend(key), NumberStyles.None, CultureInfo.InvariantCulture, out uint value) ? value : null;

    protected void WriteBackend(string key, string value) => Store.Write(0, $"{BackendPath}/{key}", value);

    /// <summary>Maps a ring page the front end granted (kept marked in use while connected); null after <see cref="Fail"/>.</summary>
    protected ulong? MapRing(uint reference, string what)
    {
        try
        {
            return Grants.Map(0, reference, write: true);
        }
        catch (GrantTableException e)
        {
            Fail($"{what} {reference}: {e.Message}");
            return null;
        }
    }

    protected void UnmapRing(uint reference)
    {
        try
        {
            Grants.Unmap(reference, write: true);
        }
        catch (GrantTableException)
        {
            // The guest's table no longer holds the entry: nothing of ours to clear.
        }
    }

    /// <summary>The device stops serving: one log line, the rings let go, state Closing (xenbus_dev_fatal's effect).</summary>
    protected void Fail(string reason)
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
            // The store refused (quota): the state stays; the device is stopped regardless.
        }
    }

    protected void Log(string line) => _log?.Invoke($"xen {Driver} {Name}: {line}");

    private void SwitchState(XenbusState state)
    {
        State = state;
        WriteBackend("state", ((int)state).ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Xen's backends' frontend_changed: act on each change of the front end's state.</summary>
    private void FollowFrontend()
    {
        string? text = ReadFrontend("state");
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
                if (State == XenbusState.InitWait && Connect())
                {
                    SwitchState(XenbusState.Connected);
                    Counters.Increment("connects");
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
}
