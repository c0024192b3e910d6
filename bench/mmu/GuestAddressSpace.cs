using SharpVisor.Memory;

namespace SharpVisor.Bench.Mmu;

/// <summary>A 4-level address space built in guest memory: linear pages mapped with 4 KiB entries.</summary>
internal sealed class GuestAddressSpace
{
    private const ulong Present = 1, Writable = 2, User = 4;

    private readonly GuestMemory _memory;
    private readonly Func<ulong> _allocate;

    public GuestAddressSpace(GuestMemory memory, Func<ulong> allocateTable)
    {
        _memory = memory;
        _allocate = allocateTable;
        Root = allocateTable();
    }

    public ulong Root { get; }

    /// <summary>Maps one 4 KiB page; returns the guest-physical address of its PTE.</summary>
    public ulong Map(ulong linear, ulong physical)
    {
        ulong table = Root;
        for (int level = 4; level > 1; level--)
        {
            ulong address = table + (((linear >> (12 + (9 * (level - 1)))) & 0x1FF) * 8);
            ulong entry = _memory.Read<ulong>(address);
            if ((entry & Present) == 0)
            {
                entry = _allocate() | Present | Writable | User;
                _memory.Write(address, entry);
            }

            table = entry & 0x000F_FFFF_FFFF_F000;
        }

        ulong pte = table + (((linear >> 12) & 0x1FF) * 8);
        _memory.Write(pte, physical | Present | Writable | User);
        return pte;
    }

    /// <summary>Points this space's top-level entry for <paramref name="linear"/> at another space's (a shared kernel half).</summary>
    public void Share(GuestAddressSpace other, ulong linear)
    {
        ulong offset = ((linear >> 39) & 0x1FF) * 8;
        _memory.Write(Root + offset, _memory.Read<ulong>(other.Root + offset));
    }
}
