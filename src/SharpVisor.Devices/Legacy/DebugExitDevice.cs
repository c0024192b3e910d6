using SharpVisor.Machine;

namespace SharpVisor.Devices.Legacy;

/// <summary>
/// QEMU's isa-debug-exit: a guest (usually a test) writes a value v to port 0xF4 and the VMM
/// exits with status (v &lt;&lt; 1) | 1, so a guest can never fake a clean exit status of 0.
/// </summary>
public sealed class DebugExitDevice : IPortIoDevice
{
    public const ushort DefaultPort = 0xF4;

    /// <summary>Four ports, so a 32-bit <c>out</c> to 0xF4 lands here as a whole.</summary>
    public const ushort PortCount = 4;

    private readonly MachineControl _control;

    public DebugExitDevice(MachineControl control)
    {
        ArgumentNullException.ThrowIfNull(control);
        _control = control;
    }

    public void Read(ushort offset, Span<byte> data) => data.Fill(0xFF);

    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        // A byte, word or dword write to the first port; the low byte is the value.
        if (offset == 0 && data.Length is 1 or 2 or 4)
        {
            _control.DebugExit(data[0]);
        }
    }
}
