namespace SharpVisor.Xen;

/// <summary>One entry of the e820-style map XENMEM_memory_map returns (type 1 RAM, 2 reserved, 3 ACPI, ...).</summary>
public readonly record struct XenMemoryMapEntry(ulong Address, ulong Size, uint Type);
