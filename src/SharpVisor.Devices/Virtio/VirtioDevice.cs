using SharpVisor.Devices.RateLimiting;
using SharpVisor.Interop;
using SharpVisor.Machine;
using SharpVisor.Machine.Snapshots;
using SharpVisor.Memory;

namespace SharpVisor.Devices.Virtio;

/// <summary>
/// The transport-independent half of a virtio device: feature negotiation, the status state
/// machine, its virtqueues and the queue-processing loop. The transport (virtio-pci) calls the
/// public members from vCPU threads; queue work runs on the device's <see cref="VirtioWorker"/>
/// thread when one is started (notifications then arrive as eventfd signals, which KVM can
/// raise directly through an ioeventfd), or inline on the notifying thread otherwise.
/// A guest that breaks the rules fails the device: DEVICE_NEEDS_RESET is set with a logged
/// reason, queue processing stops until the driver resets the device, and the host carries on.
/// </summary>
public abstract class VirtioDevice : IDisposable
{
    private readonly Virtqueue[] _queues;
    private VirtioWorker? _worker;
    private Timer?[]? _retryTimers;
    private ulong _driverFeatures;
    private volatile bool _frozen;

    protected VirtioDevice(VirtioDeviceType type, GuestMemory memory, int queueCount, ushort maxQueueSize, ulong deviceFeatures)
    {
        DeviceType = type;
        Memory = memory;
        DeviceFeatures = deviceFeatures | VirtioFeatures.Transport;
        _queues = new Virtqueue[queueCount];
        for (int i = 0; i < queueCount; i++)
        {
            _queues[i] = new Virtqueue(memory, i, maxQueueSize);
        }
    }

    public VirtioDeviceType DeviceType { get; }

    public GuestMemory Memory { get; }

    public IReadOnlyList<Virtqueue> Queues => _queues;

    /// <summary>Features the device offers.</summary>
    public ulong DeviceFeatures { get; protected set; }

    /// <summary>
    /// Features the driver accepted (meaningful once FEATURES_OK is set). Read without the lock:
    /// a vCPU reading common configuration must not wait for a worker busy with disk I/O.
    /// </summary>
    public ulong DriverFeatures => Volatile.Read(ref _driverFeatures);

    public VirtioDeviceStatus Status { get; private set; }

    /// <summary>Bumped whenever the device changes its configuration space.</summary>
    public byte ConfigGeneration { get; private set; }

    /// <summary>Why the device set DEVICE_NEEDS_RESET, or null.</summary>
    public string? FailureReason { get; private set; }

    public bool NeedsReset => (Status & VirtioDeviceStatus.DeviceNeedsReset) != 0;

    /// <summary>The driver set DRIVER_OK and the device has not failed: queues are live.</summary>
    public bool IsActive => (Status & VirtioDeviceStatus.DriverOk) != 0 && !NeedsReset;

    public IVirtioTransport? Transport { get; set; }

    /// <summary>Between <see cref="Freeze"/> and <see cref="Thaw"/>: the device does no queue or back-end work.</summary>
    public bool IsFrozen => _frozen;

    /// <summary>Requests and bytes moved each way, for metrics.</summary>
    public VirtioIoCounters IoCounters { get; } = new();

    /// <summary>Where the device reports failures and notable guest mistakes (rate-limited, never throws).</summary>
    public GuestLog? Log { get; set; }

    /// <summary>Size in bytes of the device-specific configuration structure.</summary>
    public abstract int ConfigSize { get; }

    /// <summary>Serialises queue processing with the driver's status and queue writes.</summary>
    protected object Lock { get; } = new();

    public string Name => $"virtio-{DeviceType.ToString().ToLowerInvariant()}";

    public bool HasFeature(ulong feature) => (DriverFeatures & feature) == feature;

    public abstract void ReadConfig(int offset, Span<byte> data);

    /// <summary>Driver writes to the device configuration; read-only by default.</summary>
    public virtual void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
    }

    /// <summary>The 32-bit page <paramref name="select"/> of the offered features.</summary>
    public uint ReadDeviceFeatures(uint select) => select < 2 ? (uint)(DeviceFeatures >> (int)(32 * select)) : 0;

    public void WriteDriverFeatures(uint select, uint value)
    {
        lock (Lock)
        {
            if (select >= 2 || (Status & VirtioDeviceStatus.FeaturesOk) != 0)
            {
                return;
            }

            int shift = (int)(32 * select);
            Volatile.Write(ref _driverFeatures, (_driverFeatures & ~(0xFFFF_FFFFUL << shift)) | ((ulong)value << shift));
        }
    }

    /// <summary>A driver write of the status field: 0 resets, FEATURES_OK is kept only for acceptable features, DRIVER_OK starts the queues.</summary>
    public void WriteStatus(byte value)
    {
        if (value == 0)
        {
            Reset();
            return;
        }

        bool activated = false;
        lock (Lock)
        {
            VirtioDeviceStatus old = Status;
            var requested = (VirtioDeviceStatus)value & ~VirtioDeviceStatus.DeviceNeedsReset;
            VirtioDeviceStatus next = requested | (old & VirtioDeviceStatus.DeviceNeedsReset);
            bool newlyFeaturesOk = (next & ~old & VirtioDeviceStatus.FeaturesOk) != 0;
            if (newlyFeaturesOk && !FeaturesAcceptable(_driverFeatures))
            {
                Log?.Write($"{Name}: driver features 0x{_driverFeatures:x} refused (offered 0x{DeviceFeatures:x})");
                next &= ~VirtioDeviceStatus.FeaturesOk;
            }

            Status = next;
            if ((next & ~old & VirtioDeviceStatus.DriverOk) != 0)
            {
                if ((next & VirtioDeviceStatus.FeaturesOk) == 0)
                {
                    FailLocked("driver set DRIVER_OK without FEATURES_OK");
                }
                else
                {
                    foreach (Virtqueue q in _queues)
                    {
                        q.EventIdx = (_driverFeatures & VirtioFeatures.RingEventIdx) != 0;
                        q.IndirectDescriptors = (_driverFeatures & VirtioFeatures.RingIndirectDesc) != 0;
                    }

                    Guard(OnActivated);
                    activated = !NeedsReset;
                }
            }
        }

        if (activated)
        {
            // Buffers posted before DRIVER_OK (receive queues) are picked up now.
            for (int i = 0; i < _queues.Length; i++)
            {
                Notify(i);
            }
        }
    }

    /// <summary>
    /// A driver write to queue <paramref name="index"/>'s set-up registers (size, ring addresses),
    /// applied under the device lock and only while the queue is disabled, so a second vCPU
    /// cannot change a queue between its validation in <see cref="EnableQueue"/> and its use.
    /// Returns false when the write was ignored (the queue is live).
    /// </summary>
    public bool ConfigureQueue(int index, Action<Virtqueue> configure)
    {
        lock (Lock)
        {
            Virtqueue q = _queues[index];
            if (q.Enabled)
            {
                return false;
            }

            configure(q);
            return true;
        }
    }

    /// <summary>The driver wrote queue_enable = 1 after configuring the queue.</summary>
    public void EnableQueue(int index)
    {
        lock (Lock)
        {
            try
            {
                _queues[index].Enable();
            }
            catch (VirtqueueException e)
            {
                FailLocked(e.Message);
            }
        }
    }

    /// <summary>
    /// The driver notified queue <paramref name="index"/> (or the host has work for it): the
    /// worker is woken, or without a worker the queue is served on this thread. A device that
    /// serves inline (<see cref="ServesInline"/>) first completes on this thread — the notifying
    /// vCPU's — the requests that cannot block (a read the host's page cache holds), so the
    /// guest gets its completion without two thread hand-offs; the rest goes to the worker.
    /// </summary>
    public void Notify(int index)
    {
        if ((uint)index >= (uint)_queues.Length)
        {
            return;
        }

        VirtioWorker? worker = _worker;
        if (worker is null)
        {
            ServiceQueue(index);
        }
        else if (!ServesInline || !TryServeInline(index))
        {
            worker.Wake(index);
        }
    }

    /// <summary>The eventfd that wakes the worker for queue <paramref name="index"/> (register it as an ioeventfd).</summary>
    public EventFd? GetNotifyEvent(int index) => _worker?.QueueEvent(index);

    /// <summary>Starts the device's worker thread; from then on notifications are served off the caller's thread.</summary>
    public void StartWorker()
    {
        if (_worker is not null)
        {
            return;
        }

        var worker = new VirtioWorker(this, _queues.Length);
        foreach ((int fd, Func<bool> wanted, Action ready) in PollSources())
        {
            worker.AddSource(fd, wanted, ready);
        }

        worker.Start();
        _worker = worker;
    }

    /// <summary>
    /// Stops the device for a paused machine: when this returns no request is half-served (queue
    /// work runs whole under the device lock) and until <see cref="Thaw"/> the device neither
    /// touches guest memory nor its back end (no frame leaves or enters through a TAP), so a
    /// snapshot or a migration's last copy reads a still machine. Notifications that arrive
    /// meanwhile are served at the thaw.
    /// </summary>
    public void Freeze()
    {
        lock (Lock)
        {
            _frozen = true;
        }
    }

    /// <summary>Ends <see cref="Freeze"/>: every queue is served once, for the notifications the freeze held back.</summary>
    public void Thaw()
    {
        lock (Lock)
        {
            if (!_frozen)
            {
                return;
            }

            _frozen = false;
        }

        for (int i = 0; i < _queues.Length; i++)
        {
            Notify(i);
        }
    }

    /// <summary>Resets the device: status, features and every queue back to their initial state.</summary>
    public void Reset()
    {
        lock (Lock)
        {
            Status = VirtioDeviceStatus.None;
            Volatile.Write(ref _driverFeatures, 0UL);
            FailureReason = null;
            foreach (Virtqueue q in _queues)
            {
                q.Reset();
            }

            Guard(OnReset);
        }
    }

    /// <summary>Puts the device into DEVICE_NEEDS_RESET with <paramref name="reason"/>.</summary>
    public void Fail(string reason)
    {
        lock (Lock)
        {
            FailLocked(reason);
        }
    }

    /// <summary>Drains queue <paramref name="index"/> under the device lock; any failure fails the device, never the host.</summary>
    public void ServiceQueue(int index)
    {
        lock (Lock)
        {
            Virtqueue q = _queues[index];
            if (_frozen || !IsActive || !q.Enabled)
            {
                return;
            }

            Guard(() => ProcessQueue(q));
        }
    }

    /// <summary>
    /// Serves queue <paramref name="index"/> on the calling thread as far as it can without
    /// blocking; true when nothing is left for the worker. Never waits for the device lock: a
    /// worker holding it (a flush in progress) gets the notification instead.
    /// </summary>
    private bool TryServeInline(int index)
    {
        if (!Monitor.TryEnter(Lock))
        {
            return false;
        }

        try
        {
            if (_frozen)
            {
                return false; // the worker holds it until the thaw
            }

            Virtqueue q = _queues[index];
            if (!IsActive || !q.Enabled)
            {
                return true;
            }

            bool finished = true;
            Guard(() => finished = ProcessQueueInline(q));
            return finished || NeedsReset;
        }
        finally
        {
            Monitor.Exit(Lock);
        }
    }

    /// <summary>Runs back-end work (a TAP became readable) under the device lock, guarded like queue work.</summary>
    protected void ServiceBackend(Action action)
    {
        lock (Lock)
        {
            if (IsActive && !_frozen)
            {
                Guard(action);
            }
        }
    }

    public virtual void Dispose()
    {
        lock (Lock)
        {
            foreach (Timer? timer in _retryTimers ?? [])
            {
                timer?.Dispose();
            }

            _retryTimers = null;
        }

        _worker?.Dispose();
        _worker = null;
        GC.SuppressFinalize(this);
    }

    /// <summary>Serves queue <paramref name="queue"/>; called with <see cref="Lock"/> held, only while active.</summary>
    protected abstract void ProcessQueue(Virtqueue queue);

    /// <summary>Whether <see cref="ProcessQueueInline"/> may serve notifications on the notifying thread.</summary>
    protected virtual bool ServesInline => false;

    /// <summary>
    /// Serves what <paramref name="queue"/> holds without blocking (called under <see cref="Lock"/>,
    /// only while active, on a vCPU thread); false when a request was left for the worker.
    /// </summary>
    protected virtual bool ProcessQueueInline(Virtqueue queue) => false;

    /// <summary>The driver set DRIVER_OK (called under <see cref="Lock"/>).</summary>
    protected virtual void OnActivated()
    {
    }

    /// <summary>The driver reset the device (called under <see cref="Lock"/>).</summary>
    protected virtual void OnReset()
    {
    }

    /// <summary>Device-specific feature rules beyond "a subset of what was offered, with VERSION_1".</summary>
    protected virtual bool ValidateFeatures(ulong features) => true;

    /// <summary>Extra descriptors the worker polls (a TAP fd): while wanted() is true, ready() runs when readable.</summary>
    protected virtual IEnumerable<(int Fd, Func<bool> Wanted, Action Ready)> PollSources() => [];

    /// <summary>
    /// The usual drain loop: pop and handle chains with driver notifications off, re-enable them,
    /// drain again if buffers raced in, and interrupt the driver once if the ring asks for it.
    /// </summary>
    protected void DrainQueue(Virtqueue queue, Func<DescriptorChain, uint> handle, Func<DescriptorChain, bool>? admit = null)
    {
        do
        {
            queue.DisableNotifications();
            while (!NeedsReset && queue.TryPop(out DescriptorChain chain))
            {
                if (admit is not null && !admit(chain))
                {
                    // Throttled: the chain stays available; the retry timer notifies this queue.
                    queue.UndoPop(1);
                    SignalIfNeeded(queue);
                    return;
                }

                uint written = handle(chain);
                if (NeedsReset)
                {
                    return;
                }

                queue.PushUsed(chain.Head, written);
            }
        }
        while (!NeedsReset && queue.EnableNotifications());

        SignalIfNeeded(queue);
    }

    /// <summary>
    /// Whether <paramref name="limiter"/> lets an operation of <paramref name="bytes"/> through now;
    /// if not, queue <paramref name="queueIndex"/> is notified again once it can be. Under <see cref="Lock"/>.
    /// </summary>
    protected bool Admit(RateLimiter? limiter, long bytes, int queueIndex)
    {
        if (limiter is null || limiter.TryAdmit(Math.Max(0, bytes), out TimeSpan wait))
        {
            return true;
        }

        // Timers count whole milliseconds: round up, so the retry never comes a fraction too early,
        // finds the tokens short and costs a second wake-up.
        TimeSpan due = TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds) + 1);
        _retryTimers ??= new Timer?[_queues.Length];
        if (_retryTimers[queueIndex] is { } timer)
        {
            timer.Change(due, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _retryTimers[queueIndex] = new Timer(_ => Notify(queueIndex), null, due, Timeout.InfiniteTimeSpan);
        }

        return false;
    }

    /// <summary>
    /// <see cref="DrainQueue"/> for the inline path: <paramref name="tryHandle"/> returns null for a
    /// chain that would block; that chain goes back to the ring (nothing was completed for it),
    /// the ones before it are signalled, and false tells the caller to wake the worker, which
    /// drains the rest in order and re-enables notifications.
    /// </summary>
    protected bool DrainQueueInline(Virtqueue queue, Func<DescriptorChain, uint?> tryHandle)
    {
        bool finished = true;
        do
        {
            queue.DisableNotifications();
            while (!NeedsReset && queue.TryPop(out DescriptorChain chain))
            {
                uint? written = tryHandle(chain);
                if (NeedsReset)
                {
                    return true;
                }

                if (written is null)
                {
                    queue.UndoPop(1);
                    finished = false;
                    break;
                }

                queue.PushUsed(chain.Head, written.Value);
            }
        }
        while (finished && !NeedsReset && queue.EnableNotifications());

        SignalIfNeeded(queue);
        return finished;
    }

    /// <summary>Interrupts the driver for <paramref name="queue"/> if its suppression fields allow.</summary>
    protected void SignalIfNeeded(Virtqueue queue)
    {
        if (queue.NeedsNotification())
        {
            Transport?.SignalQueue(queue);
        }
    }

    /// <summary>The device changed its configuration: bump the generation and tell the driver.</summary>
    protected void ConfigChanged()
    {
        lock (Lock)
        {
            ConfigGeneration++;
        }

        if ((Status & VirtioDeviceStatus.DriverOk) != 0)
        {
            Transport?.SignalConfigChange();
        }
    }

    /// <summary>
    /// Status, features and queues, then the device's own state. Taken under the device lock, so
    /// no request is half-served: queue work runs whole under it (in-flight requests drained).
    /// </summary>
    public void SaveState(SnapshotWriter w)
    {
        lock (Lock)
        {
            w.Write(_driverFeatures);
            w.Write((byte)Status);
            w.Write(ConfigGeneration);
            w.Write(FailureReason ?? string.Empty);
            w.Write(_queues.Length);
            for (int i = 0; i < _queues.Length; i++)
            {
                _queues[i].Save(w, HeldChains(i));
            }

            SaveDeviceState(w);
        }
    }

    public void LoadState(SnapshotReader r)
    {
        lock (Lock)
        {
            ulong features = r.ReadUInt64();
            if ((features & ~DeviceFeatures) != 0)
            {
                throw r.Invalid($"{Name}: driver features 0x{features:x} beyond what the device offers (0x{DeviceFeatures:x})");
            }

            Volatile.Write(ref _driverFeatures, features);
            Status = (VirtioDeviceStatus)r.ReadByte();
            ConfigGeneration = r.ReadByte();
            string failure = r.ReadString();
            FailureReason = failure.Length == 0 ? null : failure;
            if (r.ReadInt32() != _queues.Length)
            {
                throw r.Invalid($"{Name}: another number of queues");
            }

            foreach (Virtqueue q in _queues)
            {
                q.Load(r);
            }

            LoadDeviceState(r);
        }
    }

    /// <summary>Chains of queue <paramref name="index"/> the device holds between calls (popped, not used); called under the lock.</summary>
    protected virtual int HeldChains(int index) => 0;

    /// <summary>The device type's own state (called under the lock).</summary>
    protected virtual void SaveDeviceState(SnapshotWriter w)
    {
    }

    protected virtual void LoadDeviceState(SnapshotReader r)
    {
    }

    private bool FeaturesAcceptable(ulong features) =>
        (features & ~DeviceFeatures) == 0 && (features & VirtioFeatures.Version1) != 0 && ValidateFeatures(features);

    private void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is VirtqueueException or GuestMemoryException)
        {
            FailLocked(e.Message);
        }
        catch (Exception e)
        {
            // A device bug must not take the host down with it: fail the device loudly instead.
            FailLocked($"internal error: {e.GetType().Name}: {e.Message}");
        }
    }

    private void FailLocked(string reason)
    {
        if (NeedsReset)
        {
            return;
        }

        Status |= VirtioDeviceStatus.DeviceNeedsReset;
        FailureReason = reason;
        Log?.Write($"{Name}: device needs reset: {reason}");
        if ((Status & VirtioDeviceStatus.DriverOk) != 0)
        {
            Transport?.SignalConfigChange();
        }
    }
}
