using SharpVisor.Devices.Pci;
using SharpVisor.Devices.Virtio;
using SharpVisor.Interop;
using SharpVisor.Machine;

namespace SharpVisor.Host.Vmm;

/// <summary>
/// Keeps one virtio-pci device's queue notification addresses registered as ioeventfds (KVM)
/// wherever the guest has BAR0 mapped: a driver's notify write then wakes the device worker
/// straight from the kernel, with no exit to user space. Follows every BAR move; while BAR0 is
/// not decoded nothing is registered. A registration the accelerator refuses is logged and the
/// notification keeps working through the MMIO bus.
/// </summary>
internal sealed class QueueDoorbells : IDisposable
{
    private readonly VirtioPciDevice _transport;
    private readonly IIoEventFdRegistry _registry;
    private readonly Action<string>? _log;
    private readonly object _lock = new();
    private readonly List<(EventFd Event, ulong Address)> _registered = new();
    private bool _disposed;

    public QueueDoorbells(VirtioPciDevice transport, IIoEventFdRegistry registry, Action<string>? log)
    {
        _transport = transport;
        _registry = registry;
        _log = log;
        transport.BarMappingChanged += OnBarMappingChanged;
        Refresh();
    }

    /// <summary>The addresses registered now (for tests and diagnostics).</summary>
    public IReadOnlyList<ulong> Addresses
    {
        get
        {
            lock (_lock)
            {
                return _registered.Select(r => r.Address).ToArray();
            }
        }
    }

    public void Dispose()
    {
        _transport.BarMappingChanged -= OnBarMappingChanged;
        lock (_lock)
        {
            UnregisterAll();
            _disposed = true;
        }
    }

    private void OnBarMappingChanged(PciBar bar)
    {
        if (bar.Index == VirtioPciDevice.BarIndex)
        {
            Refresh();
        }
    }

    private void Refresh()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            UnregisterAll();
            for (int q = 0; q < _transport.Device.Queues.Count; q++)
            {
                if (_transport.QueueNotifyAddress(q) is not ulong address || _transport.Device.GetNotifyEvent(q) is not EventFd notify)
                {
                    continue;
                }

                try
                {
                    _registry.RegisterIoEventFd(notify, address, (uint)VirtioPciDevice.NotifyAccessLength, isPio: false);
                    _registered.Add((notify, address));
                }
                catch (LinuxException e)
                {
                    _log?.Invoke($"{_transport.Name}: queue {q} notifications stay on the MMIO path: {e.Message}");
                }
            }
        }
    }

    private void UnregisterAll()
    {
        foreach ((EventFd notify, ulong address) in _registered)
        {
            try
            {
                _registry.UnregisterIoEventFd(notify, address, (uint)VirtioPciDevice.NotifyAccessLength, isPio: false);
            }
            catch (Exception e) when (e is LinuxException or ObjectDisposedException)
            {
                // The VM is going away; its ioeventfds go with it.
            }
        }

        _registered.Clear();
    }
}
