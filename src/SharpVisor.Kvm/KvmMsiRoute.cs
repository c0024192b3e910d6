using SharpVisor.Interop;
using SharpVisor.Machine;

namespace SharpVisor.Kvm;

/// <summary>
/// One MSI source delivered through an irqfd: a GSI whose routing entry holds the message, and
/// an eventfd bound to it. <see cref="Signal"/> is a single eventfd write (KVM injects the MSI
/// itself); the routing entry is rewritten only when the guest changed the message.
/// </summary>
public sealed class KvmMsiRoute : IMsiRoute
{
    private readonly KvmGsiRouting _routing;
    private readonly KvmVirtualMachine _vm;
    private readonly object _lock = new();
    private readonly EventFd _eventFd = new(nonBlocking: true);
    private (ulong Address, uint Data)? _message;
    private bool _irqfdRegistered;
    private bool _disposed;

    internal KvmMsiRoute(KvmGsiRouting routing, KvmVirtualMachine vm, uint gsi)
    {
        _routing = routing;
        _vm = vm;
        Gsi = gsi;
    }

    public uint Gsi { get; }

    /// <summary>Messages delivered through the irqfd (for tests and counters).</summary>
    public long IrqfdSignals { get; private set; }

    public void Signal(ulong address, uint data)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_message != (address, data))
            {
                try
                {
                    _routing.SetMsi(Gsi, address, data);
                }
                catch (LinuxException)
                {
                    // KVM will not route this message; the direct path reports the problem, if any.
                    _message = null;
                    _vm.Interrupts.SignalMsi(address, data);
                    return;
                }

                _message = (address, data);
            }

            if (!_irqfdRegistered)
            {
                _vm.RegisterIrqFd(_eventFd, Gsi);
                _irqfdRegistered = true;
            }

            _eventFd.Signal();
            IrqfdSignals++;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_irqfdRegistered)
            {
                try
                {
                    _vm.UnregisterIrqFd(_eventFd, Gsi);
                }
                catch (Exception e) when (e is LinuxException or ObjectDisposedException)
                {
                    // The VM is already gone, and its irqfds with it.
                }
            }

            _eventFd.Dispose();
        }

        _routing.Release(this);
    }
}
