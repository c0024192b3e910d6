using SharpVisor.Machine;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>Like QEMU's isa-debug-exit: a byte written here ends the machine with status (value &lt;&lt; 1) | 1.</summary>
internal sealed class TestDebugExitDevice : IPortIoDevice
{
    private readonly MachineControl _control;

    public TestDebugExitDevice(MachineControl control)
    {
        _control = control;
    }

    public void Read(ushort offset, Span<byte> data) => data.Fill(0xFF);

    public void Write(ushort offset, ReadOnlySpan<byte> data) => _control.DebugExit(data[0]);
}
