namespace SharpVisor.Emulator;

/// <summary>The kind of a linear memory access, as a page walk and a #PF error code see it.</summary>
public enum MemoryAccess
{
    Read = 0,
    Write = 1,
    Execute = 2,
}
