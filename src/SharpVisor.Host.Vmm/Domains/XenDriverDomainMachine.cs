using System.Globalization;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.Xen;

namespace SharpVisor.Host.Domains;

/// <summary>
/// A driver domain's VMM (docs/xen.md, "Driver domains"): a Xen domain with no guest and no
/// vCPU whose "kernel" is SharpVisor's blkback. It meets the daemon's other domains on the
/// inter-domain link; a front end whose store holds back-end directories of this domain
/// introduces itself (and at start it asks every domain already there), and for each
/// <c>/local/domain/&lt;self&gt;/backend/vbd/&lt;fe&gt;/N</c> it runs a <see cref="XenDriverBlockBackend"/>
/// that reaches the front end only through the link: XenStore requests made as this domain,
/// an interdomain event channel, grant copies the front end's VMM checks. Its two pages of
/// "RAM" hold nothing: the domain exists for its domid, its ports and its grant copies.
/// </summary>
public sealed class XenDriverDomainMachine : IDomainMachine, IXenLinkService
{
    private readonly object _lock = new();
    private readonly GuestMemory _memory;
    private readonly XenDomain _domain;
    private readonly XenInterdomainLink _link;
    private readonly string _directory;
    private readonly Action<string> _log;
    private readonly Dictionary<ushort, XenStoreLinkClient> _stores = [];
    private readonly Dictionary<(ushort Frontend, int Device), (XenDriverBlockBackend Backend, XenDiskImage Image)> _backends = [];
    private readonly ManualResetEventSlim _stopped = new(false);
    private bool _ended;

    private XenDriverDomainMachine(GuestMemory memory, XenDomain domain, XenInterdomainLink link, string directory, Action<string> log)
    {
        _memory = memory;
        _domain = domain;
        _link = link;
        _directory = directory;
        _log = log;
    }

    public event Action<DomainStopInfo>? Stopped;

    public string AcceleratorName => "none";

    /// <summary>The vbds served now: (front end, device id, state).</summary>
    public IReadOnlyList<(ushort Frontend, int Device, XenbusState State)> Served
    {
        get
        {
            lock (_lock)
            {
                return _backends.Select(b => (b.Key.Frontend, b.Key.Device, b.Value.Backend.State)).ToArray();
            }
        }
    }

    /// <summary>What the VMM's InstanceStart builds for <c>--xen driver</c>: no kernel, only the domain's identity and link.</summary>
    public static MachineConfiguration Configuration(string name, int domainId, string? linkDirectory) => new()
    {
        KernelPath = "",
        Name = name,
        Xen = XenMode.Driver,
        XenDomainId = domainId,
        XenLinkDirectory = linkDirectory ?? throw new ArgumentException("a driver domain runs under the daemon (--xen-link): it serves other domains"),
    };

    /// <summary>Opens the domain and its link; <see cref="Start"/> looks for front ends.</summary>
    public static XenDriverDomainMachine Start(MachineConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration.XenDomainId is not int id || id < 1 || id >= XenDomain.DomidSelf || configuration.XenLinkDirectory is not { } directory)
        {
            throw new ArgumentException("a driver domain needs its domid and the daemon's domains directory (--id, --xen-link)");
        }

        Action<string> log = configuration.Log ?? System.Console.Error.WriteLine;
        GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        var domain = new XenDomain(memory, new XenDomainOptions { DomainId = (ushort)id, Log = log });
        XenInterdomainLink link;
        try
        {
            link = XenInterdomainLink.Start(directory, domain, new GrantTable(domain), log);
        }
        catch
        {
            domain.Dispose();
            memory.Dispose();
            throw;
        }

        var machine = new XenDriverDomainMachine(memory, domain, link, directory, log);
        link.Service = machine;
        return machine;
    }

    public void Start()
    {
        _log($"xen driver domain {_domain.DomainId}: serving vbds of the domains that name it as their back end");
        foreach (string dir in Directory.EnumerateDirectories(_directory))
        {
            if (ushort.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out ushort peer) && peer != _domain.DomainId
                && File.Exists(XenInterdomainLink.SocketPath(_directory, peer)))
            {
                ThreadPool.QueueUserWorkItem(_ => Adopt(peer));
            }
        }
    }

    byte[]? IXenLinkService.Handle(ushort peer, XenLinkMessageType type, ReadOnlySpan<byte> payload)
    {
        switch (type)
        {
            case XenLinkMessageType.Introduce:
                // Off the link's reader: adopting makes requests whose replies that reader delivers.
                ThreadPool.QueueUserWorkItem(_ => Adopt(peer));
                return null;

            case XenLinkMessageType.XenStoreWatchEvent:
                XenStoreLinkClient? store;
                lock (_lock)
                {
                    store = _stores.GetValueOrDefault(peer);
                }

                store?.OnWatchEvent(payload);
                return null;

            default:
                // A driver domain holds no store of its own: its front ends' stores hold its directories.
                return XenStoreLinkWire.Error("ENOENT");
        }
    }

    /// <summary>A front end's VMM ended: its vbds go (a new incarnation introduces itself again).</summary>
    void IXenLinkService.PeerGone(ushort peer)
    {
        List<(XenDriverBlockBackend Backend, XenDiskImage Image)> gone;
        lock (_lock)
        {
            gone = _backends.Where(b => b.Key.Frontend == peer).Select(b => b.Value).ToList();
            foreach ((ushort frontend, int device) in _backends.Keys.Where(k => k.Frontend == peer).ToArray())
            {
                _backends.Remove((frontend, device));
            }

            _stores.Remove(peer);
        }

        ThreadPool.QueueUserWorkItem(_ =>
        {
            foreach ((XenDriverBlockBackend backend, XenDiskImage image) in gone)
            {
                backend.Dispose();
                image.Dispose();
            }
        });
    }

    public void Pause() => throw new NotSupportedException("a driver domain has no vCPU to pause");

    public void Resume() => throw new NotSupportedException("a driver domain has no vCPU to resume");

    public void PressPowerButton() => Stop("power button");

    public void SendCtrlAltDel() => throw new InvalidOperationException("a driver domain has no keyboard");

    public void Stop(string detail)
    {
        lock (_lock)
        {
            if (_ended)
            {
                return;
            }

            _ended = true;
        }

        Stopped?.Invoke(new DomainStopInfo(MachineStopReason.PowerOff, 0, detail));
        _stopped.Set();
    }

    public void WriteConsoleInput(ReadOnlySpan<byte> data)
    {
    }

    public void SetBalloonTarget(long amountMib) => throw new NotSupportedException("a driver domain has no balloon");

    public BalloonState ReadBalloon() => throw new NotSupportedException("a driver domain has no balloon");

    public void SetBalloonStatisticsInterval(int seconds) => throw new NotSupportedException("a driver domain has no balloon");

    public DomainCounters ReadCounters()
    {
        var exits = new Dictionary<string, long>();
        foreach ((string name, long value) in _domain.Counters.Snapshot())
        {
            exits["xen-" + name] = value;
        }

        lock (_lock)
        {
            foreach (((ushort frontend, int _), (XenDriverBlockBackend backend, XenDiskImage _)) in _backends)
            {
                foreach ((string name, long value) in backend.Counters.Snapshot())
                {
                    exits[$"xen-dd-{frontend}-{backend.Name}-{name}"] = value;
                }
            }

            return new DomainCounters
            {
                Exits = exits,
                Devices = _backends.Values.Select(b => new DeviceCounters(
                    $"dom{b.Backend.FrontendDomain}-{b.Backend.Name}", b.Backend.Counters["reads"], b.Backend.Counters["read-bytes"],
                    b.Backend.Counters["writes"], b.Backend.Counters["write-bytes"], "xen-vbd")).ToList(),
            };
        }
    }

    public void UpdateDrive(string id, string? path, RateLimitConfiguration? rateLimit) => throw new ArgumentException("a driver domain has no drives of its own");

    public void UpdateNetworkInterface(string id, RateLimitConfiguration? rx, RateLimitConfiguration? tx) => throw new ArgumentException("a driver domain has no NICs");

    public void Dispose()
    {
        _link.Dispose();
        List<(XenDriverBlockBackend Backend, XenDiskImage Image)> all;
        lock (_lock)
        {
            all = [.. _backends.Values];
            _backends.Clear();
        }

        foreach ((XenDriverBlockBackend backend, XenDiskImage image) in all)
        {
            backend.Dispose();
            image.Dispose();
        }

        _domain.Dispose();
        _memory.Dispose();
        _stopped.Dispose();
    }

    /// <summary>Serves every vbd <paramref name="frontend"/>'s store holds for this domain and is not served yet.</summary>
    private void Adopt(ushort frontend)
    {
        XenStoreLinkClient store;
        lock (_lock)
        {
            if (_ended)
            {
                return;
            }

            if (!_stores.TryGetValue(frontend, out store!))
            {
                store = new XenStoreLinkClient(_link, frontend);
                _stores[frontend] = store;
            }
        }

        string self = _domain.DomainId.ToString(CultureInfo.InvariantCulture);
        string parent = $"/local/domain/{self}/backend/vbd/{frontend.ToString(CultureInfo.InvariantCulture)}";
        foreach (string device in store.Directory(parent) ?? [])
        {
            if (!int.TryParse(device, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            {
                continue;
            }

            lock (_lock)
            {
                if (_ended || _backends.ContainsKey((frontend, id)))
                {
                    continue;
                }
            }

            string path = $"{parent}/{device}";
            XenDiskImage? image = null;
            try
            {
                string target = store.Read(path + "/params") ?? throw new XenStoreException("ENOENT", $"{path}/params is missing");
                image = new XenDiskImage(target, readOnly: store.Read(path + "/mode") != "w");
                var backend = new XenDriverBlockBackend(_domain, store, frontend, path, image, _log);
                lock (_lock)
                {
                    _backends[(frontend, id)] = (backend, image);
                }

                backend.Start();
                _log($"xen driver domain {self}: serving domain {frontend}'s vbd {id} ({target})");
            }
            catch (Exception e) when (e is XenStoreException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                image?.Dispose();
                _log($"xen driver domain {self}: cannot serve domain {frontend}'s vbd {id}: {e.Message}");
            }
        }
    }
}
