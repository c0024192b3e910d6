namespace SharpVisor.Emulator;

/// <summary>
/// Physical = linear: the mode before paging is enabled. Every linear address is its own
/// physical address; whether RAM or a device backs it is decided by <see cref="PhysicalMemory"/>.
/// </summary>
public sealed class FlatMmu : IMmu
{
    public static FlatMmu Instance { get; } = new();

    public ulong Translate(X86Cpu cpu, ulong linear, MemoryAccess access) => linear;
}
