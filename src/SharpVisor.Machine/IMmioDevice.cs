namespace SharpVisor.Machine;

/// <summary>A device on the memory-mapped I/O bus. Offsets are relative to the registered base address.</summary>
public interface IMmioDevice
{
    void Read(ulong offset, Span<byte> data);

    void Write(ulong offset, ReadOnlySpan<byte> data);
}
