using SharpVisor.Machine;

namespace SharpVisor.Bench.ExitLatency;

/// <summary>The done port: ends the current Run by kicking the vCPU (the machine itself stays usable for the next run).</summary>
public sealed class KickingPort : IPortIoDevice
{
    private readonly IVcpu _vcpu;

    public KickingPort(IVcpu vcpu)
    {
        _vcpu = vcpu;
    }

    public void Read(ushort offset, Span<byte> data) => data.Clear();

    public void Write(ushort offset, ReadOnlySpan<byte> data) => _vcpu.Kick();
}
