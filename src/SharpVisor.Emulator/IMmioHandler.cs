namespace SharpVisor.Emulator;

/// <summary>
/// Physical accesses that miss RAM (or write to read-only regions) go here, e.g. to the
/// machine's MmioBus. Returning false means no device claimed the address: the CPU raises a fault.
/// </summary>
public interface IMmioHandler
{
    bool Read(ulong physicalAddress, Span<byte> data);

    bool Write(ulong physicalAddress, ReadOnlySpan<byte> data);
}
