namespace SharpVisor.Boot;

/// <summary>One e820 range: struct boot_e820_entry { u64 addr; u64 size; u32 type; } (20 bytes, packed).</summary>
public readonly record struct E820Entry(ulong Address, ulong Size, E820Type Type)
{
    public const int EncodedSize = 20;

    public ulong End => Address + Size;

    public bool Contains(ulong address, ulong size) =>
        address >= Address && size <= Size && address - Address <= Size - size;
}
