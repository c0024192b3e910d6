using SharpVisor.Boot.Acpi;
using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Virtio;
using SharpVisor.Devices.Virtio.Vsock;
using SharpVisor.Machine;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// PCI bus 0 of one machine and the virtio devices on it, accelerator-neutral. Devices are
/// attached before the guest runs, in slot order: disks (so the first is /dev/vda), NICs, the
/// balloon, the console and the entropy device. Each device's queues are served by its own
/// worker thread; where the machine has ioeventfds (KVM) the queue doorbells are registered
/// there, and MSI-X messages take the controller's irqfd routes where it has them. A device
/// the guest breaks reports NEEDS_RESET through <see cref="Log"/>; the machine runs on.
/// </summary>
public sealed class PciDeviceManager : IDisposable
{
    public const int PagesPerMib = 256;

    private readonly IVirtualMachine _machine;
    private readonly List<AttachedVirtioDevice> _devices = new();
    private readonly List<IDisposable> _backends = new();
    private readonly Dictionary<AttachedVirtioDevice, QueueDoorbells> _doorbells = new();
    private readonly object _timerLock = new();
    private Timer? _statisticsTimer;
    private int _statisticsIntervalSeconds;
    private bool _started;
    private bool _disposed;

    // The rate limits in force (PATCH replaces them on the running devices): what a snapshot records.
    private readonly object _limitsLock = new();
    private readonly Dictionary<string, RateLimitConfiguration?> _diskLimits = new();
    private readonly Dictionary<string, (RateLimitConfiguration? Rx, RateLimitConfiguration? Tx)> _nicLimits = new();

    public PciDeviceManager(IVirtualMachine machine, Action<string>? log = null)
        : this(machine, new GuestLog(log))
    {
    }

    /// <param name="log">The machine's guest log: every device and the bus write through it, so its rate limit is machine-wide.</param>
    public PciDeviceManager(IVirtualMachine machine, GuestLog log, PciBusLayout? layout = null)
    {
        _machine = machine;
        Log = log;
        Pci = new PciBus(machine.Mmio, machine.Interrupts, layout) { Log = log };
        machine.PortIo.Register(PciConfigIo.BasePort, PciConfigIo.PortCount, Pci.ConfigIo, "pci-config");
    }

    public PciBus Pci { get; }

    /// <summary>Where the bus and the devices report guest mistakes (rate-limited, never throws).</summary>
    public GuestLog Log { get; }

    public IReadOnlyList<AttachedVirtioDevice> Devices => _devices;

    public VirtioBalloonDevice? Balloon { get; private set; }

    public VirtioConsoleDevice? Console { get; private set; }

    /// <summary>Attaches every device <paramref name="configuration"/> asks for and starts them.</summary>
    public static PciDeviceManager Create(IVirtualMachine machine, MachineConfiguration configuration, GuestLog? log = null, PciBusLayout? layout = null)
    {
        var manager = new PciDeviceManager(machine, log ?? new GuestLog(configuration.Log), layout);
        try
        {
            for (int i = 0; i < configuration.Disks.Count; i++)
            {
                manager.AddDisk(configuration.Disks[i], DiskName(configuration.Disks[i], i));
            }

            for (int i = 0; i < configuration.NetworkInterfaces.Count; i++)
            {
                manager.AddNetworkInterface(configuration.NetworkInterfaces[i], NetworkInterfaceName(configuration.NetworkInterfaces[i], i));
            }

            if (configuration.Balloon is { } balloon)
            {
                manager.AddBalloon(balloon);
            }

            if (configuration.VirtioConsoleOutput is { } console)
            {
                manager.AddConsole(console);
            }

            if (configuration.EntropyDevice)
            {
                manager.AddEntropy();
            }

            if (configuration.Vsock is { } vsock)
            {
                manager.AddVsock(vsock);
            }

            manager.Start();
            return manager;
        }
        catch
        {
            manager.Dispose();
            throw;
        }
    }

    private static string DiskName(DiskConfiguration disk, int index) => disk.Id ?? $"disk{index}";

    private static string NetworkInterfaceName(NetworkInterfaceConfiguration nic, int index) => nic.Id ?? $"net{index}";

    /// <summary>
    /// <paramref name="configuration"/> (the one these devices were built from) with each disk's
    /// and NIC's rate limits as they are now, after any PATCH: what a snapshot or migration carries.
    /// </summary>
    public MachineConfiguration WithCurrentRateLimits(MachineConfiguration configuration)
    {
        lock (_limitsLock)
        {
            return configuration with
            {
                Disks = configuration.Disks
                    .Select((d, i) => _diskLimits.TryGetValue(DiskName(d, i), out RateLimitConfiguration? limit) ? d with { RateLimit = limit } : d)
                    .ToList(),
                NetworkInterfaces = configuration.NetworkInterfaces
                    .Select((n, i) => _nicLimits.TryGetValue(NetworkInterfaceName(n, i), out (RateLimitConfiguration? Rx, RateLimitConfiguration? Tx) limits) ? n with { RxRateLimit = limits.Rx, TxRateLimit = limits.Tx } : n)
                    .ToList(),
            };
        }
    }

    public AttachedVirtioDevice AddDisk(DiskConfiguration disk, string name)
    {
        lock (_limitsLock)
        {
            _diskLimits[name] = disk.RateLimit;
        }

        var image = new RawDiskImage(disk.Path, disk.ReadOnly);
        _backends.Add(image);
        return Attach(name, new VirtioBlockDevice(_machine.Memory, image, serial: disk.Id ?? name, cacheMode: disk.CacheMode) { RateLimiter = disk.RateLimit?.Create() });
    }

    public AttachedVirtioDevice AddNetworkInterface(NetworkInterfaceConfiguration nic, string name)
    {
        lock (_limitsLock)
        {
            _nicLimits[name] = (nic.RxRateLimit, nic.TxRateLimit);
        }

        TapDevice tap = TapDevice.Open(nic.TapName ?? "");
        _backends.Add(tap);
        MacAddress mac = nic.Mac ?? MacAddress.Random();
        return Attach(name, new VirtioNetDevice(_machine.Memory, tap, mac.ToBytes())
        {
            RxRateLimiter = nic.RxRateLimit?.Create(),
            TxRateLimiter = nic.TxRateLimit?.Create(),
            Interceptor = nic.Interceptor,
        });
    }

    public AttachedVirtioDevice AddBalloon(BalloonConfiguration configuration)
    {
        if (Balloon is not null)
        {
            throw new InvalidOperationException("a machine has at most one balloon");
        }

        var balloon = new VirtioBalloonDevice(_machine.Memory, statistics: configuration.StatisticsIntervalSeconds > 0, deflateOnOom: configuration.DeflateOnOom);
        AttachedVirtioDevice attached = Attach("balloon0", balloon);
        Balloon = balloon;
        _statisticsIntervalSeconds = configuration.StatisticsIntervalSeconds;
        SetBalloonTarget(configuration.InitialTargetMib);
        return attached;
    }

    public AttachedVirtioDevice AddConsole(Stream output)
    {
        var console = new VirtioConsoleDevice(_machine.Memory, output);
        AttachedVirtioDevice attached = Attach("console0", console);
        Console = console;
        return attached;
    }

    public AttachedVirtioDevice AddEntropy() => Attach("rng0", new VirtioRngDevice(_machine.Memory));

    /// <summary>The virtio-vsock device; binds its Unix socket now, so host programs can connect before the guest runs.</summary>
    public AttachedVirtioDevice AddVsock(VsockConfiguration configuration) =>
        Attach("vsock0", new VirtioVsockDevice(_machine.Memory, configuration.GuestCid, configuration.UdsPath));

    /// <summary>
    /// PATCH of a running drive: a new backing file (opened before anything changes; the guest
    /// sees the new capacity through a configuration change) and/or a new rate limiter.
    /// </summary>
    public void UpdateDisk(string name, string? path, RateLimitConfiguration? rateLimit)
    {
        VirtioBlockDevice disk = _devices.Select(d => d.Name == name ? d.Device as VirtioBlockDevice : null).FirstOrDefault(d => d is not null)
            ?? throw new ArgumentException($"no drive '{name}'");
        if (path is not null)
        {
            var image = new RawDiskImage(path, disk.ReadOnly);
            RawDiskImage previous = disk.ReplaceImage(image);
            _backends.Remove(previous);
            _backends.Add(image);
            previous.Dispose();
        }

        if (rateLimit is not null)
        {
            disk.RateLimiter = rateLimit.Create();
            lock (_limitsLock)
            {
                _diskLimits[name] = rateLimit;
            }
        }
    }

    /// <summary>PATCH of a running NIC: new rate limiters (null leaves one as it is).</summary>
    public void UpdateNetworkInterface(string name, RateLimitConfiguration? rx, RateLimitConfiguration? tx)
    {
        VirtioNetDevice nic = _devices.Select(d => d.Name == name ? d.Device as VirtioNetDevice : null).FirstOrDefault(d => d is not null)
            ?? throw new ArgumentException($"no network interface '{name}'");
        if (rx is not null)
        {
            nic.RxRateLimiter = rx.Create();
            nic.Notify(VirtioNetDevice.ReceiveQueue);
        }

        if (tx is not null)
        {
            nic.TxRateLimiter = tx.Create();
            nic.Notify(VirtioNetDevice.TransmitQueue);
        }

        lock (_limitsLock)
        {
            (RateLimitConfiguration? Rx, RateLimitConfiguration? Tx) current = _nicLimits.GetValueOrDefault(name);
            _nicLimits[name] = (rx ?? current.Rx, tx ?? current.Tx);
        }
    }

    /// <summary>Starts every device's worker and binds the queue doorbells; call once, before the guest runs.</summary>
    public void Start()
    {
        if (_started)
        {
            return;
        }

        _started = true;
        foreach (AttachedVirtioDevice attached in _devices)
        {
            attached.Device.StartWorker();
            if (_machine is IIoEventFdRegistry registry)
            {
                _doorbells.Add(attached, new QueueDoorbells(attached.Transport, registry, Log.Write));
            }
        }

        if (Balloon is not null && _statisticsIntervalSeconds > 0)
        {
            SetStatisticsInterval(_statisticsIntervalSeconds);
        }
    }

    /// <summary>The INTx routes of every function on the bus, for the DSDT's _PRT.</summary>
    public IReadOnlyList<AcpiPciRoute> AcpiRoutes() =>
        Pci.IntxRoutes().Select(r => new AcpiPciRoute(r.Slot, r.Pin, r.Gsi)).ToArray();

    /// <summary>Where <paramref name="name"/>'s queue doorbells are registered as ioeventfds now (empty without them).</summary>
    public IReadOnlyList<ulong> IoEventFdAddresses(string name) =>
        _doorbells.Where(d => d.Key.Name == name).SelectMany(d => d.Value.Addresses).ToArray();

    /// <summary>Asks the guest to give <paramref name="mib"/> MiB back through the balloon.</summary>
    public void SetBalloonTarget(long mib)
    {
        VirtioBalloonDevice balloon = Balloon ?? throw new InvalidOperationException("this machine has no balloon device");
        long memoryMib = (long)(_machine.Memory.RamSize >> 20);
        if (mib < 0 || mib > memoryMib)
        {
            throw new ArgumentOutOfRangeException(nameof(mib), $"balloon target {mib} MiB is out of range (0-{memoryMib} MiB, the guest's memory)");
        }

        balloon.SetTargetPages((uint)(mib * PagesPerMib));
    }

    /// <summary>
    /// How often the balloon's statistics buffer goes back to the guest to be refilled; the
    /// statistics queue must have been offered at boot (a non-zero interval then). The new timer
    /// is built before the old one is stopped: a refused interval leaves polling as it was.
    /// </summary>
    public void SetStatisticsInterval(int seconds)
    {
        VirtioBalloonDevice balloon = Balloon ?? throw new InvalidOperationException("this machine has no balloon device");
        if ((balloon.DeviceFeatures & VirtioBalloonDevice.FeatureStatsQueue) == 0)
        {
            throw new InvalidOperationException("balloon statistics were not enabled when the machine was built");
        }

        if (seconds is < 0 or > BalloonConfiguration.MaxStatisticsIntervalSeconds)
        {
            throw new ArgumentOutOfRangeException(nameof(seconds), $"the statistics interval must be 0-{BalloonConfiguration.MaxStatisticsIntervalSeconds} s");
        }

        Timer? next = null;
        if (seconds > 0)
        {
            TimeSpan period = TimeSpan.FromSeconds(seconds);
            next = new Timer(_ => RequestStatistics(balloon), null, period, period);
        }

        Timer? previous;
        lock (_timerLock)
        {
            if (_disposed)
            {
                next?.Dispose();
                return;
            }

            previous = _statisticsTimer;
            _statisticsTimer = next;
            _statisticsIntervalSeconds = seconds;
        }

        StopTimer(previous);
    }

    public int StatisticsIntervalSeconds => _statisticsIntervalSeconds;

    /// <summary>Whether the statistics timer is running.</summary>
    public bool IsPollingStatistics
    {
        get
        {
            lock (_timerLock)
            {
                return _statisticsTimer is not null;
            }
        }
    }

    public void Dispose()
    {
        Timer? timer;
        lock (_timerLock)
        {
            _disposed = true;
            timer = _statisticsTimer;
            _statisticsTimer = null;
        }

        // Waits for a callback in flight: it touches guest memory, which is unmapped after this.
        StopTimer(timer);
        foreach (QueueDoorbells doorbells in _doorbells.Values)
        {
            doorbells.Dispose();
        }

        _doorbells.Clear();
        foreach (AttachedVirtioDevice attached in _devices)
        {
            attached.Device.Dispose();
        }

        foreach (IDisposable backend in _backends)
        {
            backend.Dispose();
        }

        _backends.Clear();
    }

    /// <summary>The timer callback: on a thread-pool thread, where an exception would end the process.</summary>
    private void RequestStatistics(VirtioBalloonDevice balloon)
    {
        try
        {
            balloon.RequestStatistics();
        }
        catch (Exception e)
        {
            balloon.Fail($"statistics request: {e.GetType().Name}: {e.Message}");
        }
    }

    private static void StopTimer(Timer? timer)
    {
        if (timer is null)
        {
            return;
        }

        using var done = new ManualResetEvent(false);
        if (timer.Dispose(done))
        {
            done.WaitOne();
        }
    }

    private AttachedVirtioDevice Attach(string name, VirtioDevice device)
    {
        if (_started)
        {
            throw new InvalidOperationException("devices are attached before the machine starts");
        }

        string kind = AttachedVirtioDevice.KindOf(device);
        if (_devices.Any(d => d.Name == name && d.Kind == kind))
        {
            device.Dispose();
            throw new ArgumentException($"two {kind} devices are named '{name}'");
        }

        device.Log = Log.WithPrefix($"{name}: ");
        var transport = new VirtioPciDevice(device);
        try
        {
            Pci.Attach(transport);
        }
        catch
        {
            device.Dispose();
            throw;
        }

        var attached = new AttachedVirtioDevice(name, device, transport);
        _devices.Add(attached);
        return attached;
    }

    /// <summary>The virtio-pci functions, each saving its configuration space, transport and device.</summary>
    public IEnumerable<SharpVisor.Machine.Snapshots.ISnapshotable> SnapshotParts => _devices.Select(d => d.Transport);

    /// <summary>After a restore: every queue looks at its ring again (buffers given back at save time are taken anew).</summary>
    public void NotifyAllQueues()
    {
        foreach (AttachedVirtioDevice attached in _devices)
        {
            for (int i = 0; i < attached.Device.Queues.Count; i++)
            {
                attached.Device.Notify(i);
            }
        }
    }
}
