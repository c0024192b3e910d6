using SharpVisor.Machine;

namespace SharpVisor.Kvm.Tests;

/// <summary>A device with a bug: every access throws.</summary>
internal sealed class ThrowingPortDevice : IPortIoDevice
{
    public void Read(ushort offset, Span<byte> data) => throw new InvalidOperationException("device exploded on read");

    public void Write(ushort offset, ReadOnlySpan<byte> data) => throw new InvalidOperationException("device exploded on write");
}
