using System.Runtime.InteropServices;
using SharpVisor.Memory;

namespace SharpVisor.Boot;

/// <summary>
/// The page tables the VMM builds for a 64-bit entry: PML4[0] → PDPT, PDPT[0..3] → four page
/// directories whose 2 MiB pages identity-map 0..4 GiB. That covers everything the Linux
/// 64-bit protocol asks to be mapped (kernel + init_size, zero page, command line), which all
/// lie below the 3 GiB MMIO hole here.
/// </summary>
public static class IdentityPageTables
{
    public const ulong Present = 1UL << 0;
    public const ulong Writable = 1UL << 1;

    /// <summary>PS bit in a page-directory entry: the entry maps a 2 MiB page.</summary>
    public const ulong LargePage = 1UL << 7;

    public const ulong LargePageSize = 2UL << 20;

    private const int EntriesPerTable = 512;

    public static void Write(GuestMemory memory)
    {
        var table = new ulong[EntriesPerTable];

        table[0] = BootLayout.PdptAddress | Present | Writable;
        memory.Write(BootLayout.Pml4Address, MemoryMarshal.AsBytes(table.AsSpan()));

        Array.Clear(table);
        for (int i = 0; i < BootLayout.PageDirectoryCount; i++)
        {
            table[i] = (BootLayout.PageDirectoryAddress + (ulong)i * 0x1000) | Present | Writable;
        }

        memory.Write(BootLayout.PdptAddress, MemoryMarshal.AsBytes(table.AsSpan()));

        for (int d = 0; d < BootLayout.PageDirectoryCount; d++)
        {
            for (int i = 0; i < EntriesPerTable; i++)
            {
                ulong address = ((ulong)d * EntriesPerTable + (ulong)i) * LargePageSize;
                table[i] = address | Present | Writable | LargePage;
            }

            memory.Write(BootLayout.PageDirectoryAddress + (ulong)d * 0x1000, MemoryMarshal.AsBytes(table.AsSpan()));
        }
    }
}
