using SharpVisor.Interop;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Host.Tests.Virtio;

/// <summary>
/// A machine without an accelerator: guest memory, the two buses and a recording interrupt
/// controller — what the device manager needs. The test plays the guest by driving the buses.
/// It takes ioeventfd registrations as KVM would, and records them; guest writes still go to
/// the MMIO bus, and a test can signal a registered eventfd itself to play KVM.
/// </summary>
public sealed class FakeMachine : IVirtualMachine, IIoEventFdRegistry
{
    private readonly object _lock = new();
    private readonly Dictionary<ulong, EventFd> _ioEventFds = new();

    public FakeMachine(ulong ramSize = 64 << 20)
    {
        Memory = GuestMemory.CreateRam(ramSize);
    }

    public GuestMemory Memory { get; }

    public PortIoBus PortIo { get; } = new();

    public MmioBus Mmio { get; } = new();

    public RecordingInterrupts RecordingInterrupts { get; } = new();

    public IInterruptController Interrupts => RecordingInterrupts;

    public MachineControl Control { get; } = new();

    public IHypercallHandler? Hypercalls { get; set; }

    /// <summary>No accelerator: no CMOS RTC, nothing to snapshot.</summary>
    public MachineCapabilities Capabilities { get; } = new() { Accelerator = "fake" };

    /// <summary>The ioeventfds registered now, by guest physical address.</summary>
    public IReadOnlyDictionary<ulong, EventFd> IoEventFds
    {
        get
        {
            lock (_lock)
            {
                return new Dictionary<ulong, EventFd>(_ioEventFds);
            }
        }
    }

    public void RegisterIoEventFd(EventFd eventFd, ulong address, uint length, bool isPio, ulong? datamatch = null)
    {
        lock (_lock)
        {
            Assert.False(isPio);
            Assert.Equal(2u, length);
            Assert.True(_ioEventFds.TryAdd(address, eventFd), $"ioeventfd at 0x{address:x} registered twice");
        }
    }

    public void UnregisterIoEventFd(EventFd eventFd, ulong address, uint length, bool isPio, ulong? datamatch = null)
    {
        lock (_lock)
        {
            Assert.True(_ioEventFds.Remove(address), $"ioeventfd at 0x{address:x} unregistered but never registered");
        }
    }

    public IVcpu CreateVcpu(int id) => throw new NotSupportedException("the fake machine runs no guest code");

    public void Dispose() => Memory.Dispose();
}
