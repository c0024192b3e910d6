using SharpVisor.Machine;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// A vCPU's view of the port space: a bus with one device spanning every port, which counts
/// each access (the "io" exits a KVM user knows) and forwards it to the machine's
/// <see cref="PortIoBus"/>, where the real devices are.
/// </summary>
public sealed class VcpuPortIo : IPortIoDevice
{
    private readonly PortIoBus _machineBus;
    private readonly ExitCounters _exits;

    private VcpuPortIo(PortIoBus machineBus, ExitCounters exits)
    {
        _machineBus = machineBus;
        _exits = exits;
    }

    /// <summary>
    /// The bus to give the CPU core (<see cref="X86Cpu.PortIo"/>). It spans ports 0-0xFFFE (a
    /// registration holds at most 0xFFFF ports); port 0xFFFF reads all-ones, as unclaimed ports do.
    /// </summary>
    public static PortIoBus CreateBus(PortIoBus machineBus, ExitCounters exits)
    {
        var bus = new PortIoBus();
        bus.Register(0, ushort.MaxValue, new VcpuPortIo(machineBus, exits), "vcpu port I/O");
        return bus;
    }

    // Registered at base 0, so the offset is the port.
    public void Read(ushort offset, Span<byte> data)
    {
        _exits.Increment("io");
        _machineBus.Read(offset, data);
    }

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        _exits.Increment("io");
        _machineBus.Write(offset, data);
    }
}
