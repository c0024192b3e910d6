namespace SharpVisor.Machine;

/// <summary>A device on the x86 I/O port bus. Offsets are relative to the registered base port.</summary>
public interface IPortIoDevice
{
    void Read(ushort offset, Span<byte> data);

    void Write(ushort offset, ReadOnlySpan<byte> data);
}
