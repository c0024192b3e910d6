using SharpVisor.Emulator.Mmu;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// The address space the native harness process gives a test case, as an MMU: the data
/// window (read/write, no execute), the code page (read/execute: a store into the code and
/// its exit stub faults on both sides), the read-only exit slot; everything else unmapped,
/// with kernel-half addresses reported as protection faults the way Linux does. Paging
/// structures are not involved: the layout is the page table.
/// </summary>
internal sealed class UserModeMmu : MmuBase
{
    public UserModeMmu(GuestMemory memory)
        : base(memory, null)
    {
    }

    public override MmuMode Mode => MmuMode.Shadow;

    protected override Translation TranslateMiss(ulong linear, PageAccess access)
    {
        PageRights rights;
        if (linear - DiffCase.DataBase < DiffCase.DataSize)
        {
            rights = PageRights.Write | PageRights.User | PageRights.Dirty;
        }
        else if (linear - DiffCase.CodeBase < DiffCase.CodePageSize)
        {
            rights = PageRights.User | PageRights.Execute;
        }
        else if (linear - DiffCase.ExitSlot < 0x1000)
        {
            rights = PageRights.User; // the harness's read-only page holding its exit address
        }
        else
        {
            // Linux reports user accesses at or above TASK_SIZE_MAX as protection faults.
            return Fault(Walker.ErrorCodeFor(access, present: linear >= 0x7FFF_FFFF_F000, reservedBit: false), linear);
        }

        if (!Walker.IsAllowed(rights, access))
        {
            return Fault(Walker.ErrorCodeFor(access, present: true, reservedBit: false), linear);
        }

        return Complete(linear, access, linear, rights, 4096);
    }

    protected override bool TryReadPdptes(ulong cr3, Span<ulong> pdptes) => true;

    protected override nint ResolvePage(ulong physicalPage, PageAccess access, out bool writable)
    {
        MemoryRegion? region = Memory.FindRegion(physicalPage, 4096);
        writable = region is { ReadOnly: false };
        return region is null ? 0 : region.HostAddress + (nint)(physicalPage - region.GuestPhysicalAddress);
    }
}
