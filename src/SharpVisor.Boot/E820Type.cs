namespace SharpVisor.Boot;

/// <summary>Address range types of the BIOS e820 memory map (also used by Multiboot's mmap).</summary>
public enum E820Type : uint
{
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
    Nvs = 4,
    Unusable = 5,
}
