namespace SharpVisor.Memory;

/// <summary>A guest-supplied address or length that does not lie inside guest RAM.</summary>
public sealed class GuestMemoryException : Exception
{
    public GuestMemoryException(ulong address, ulong length)
        : base($"guest physical range 0x{address:x}+0x{length:x} is outside guest memory")
    {
        Address = address;
        Length = length;
    }

    public ulong Address { get; }

    public ulong Length { get; }
}
