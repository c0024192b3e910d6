using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Accelerator;

/// <summary>
/// Reads the instruction bytes at CS:RIP for crash reports, translating through the guest's own
/// page tables with a walk of its own: it sets no accessed bits, touches no vCPU's TLB, and stops
/// at the first page that does not translate to RAM.
/// </summary>
public static class GuestCodeReader
{
    public const int MaxInstructionBytes = 16;

    private const ulong PageSize = 4096;

    public static byte[]? Read(GuestMemory memory, VcpuState state, int physicalAddressBits)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(state);
        bool longMode = (state.Efer & VcpuState.EferLongModeActive) != 0 && state.Cs.Long;
        ulong linear = longMode ? state.Rip : (state.Cs.Base + state.Rip) & 0xFFFF_FFFF;
        PageWalker? walker = CreateWalker(memory, state, physicalAddressBits);
        var bytes = new List<byte>(MaxInstructionBytes);
        while (bytes.Count < MaxInstructionBytes)
        {
            int chunk = (int)Math.Min((ulong)(MaxInstructionBytes - bytes.Count), PageSize - (linear & (PageSize - 1)));
            if (!TryTranslate(memory, walker, linear, out ulong physical) || !memory.TryGetSpan(physical, chunk, out Span<byte> span))
            {
                break;
            }

            bytes.AddRange(span);
            linear += (ulong)chunk;
        }

        return bytes.Count > 0 ? bytes.ToArray() : null;
    }

    /// <summary>A walker for the state's paging mode; null when paging is off (linear = physical).</summary>
    private static PageWalker? CreateWalker(GuestMemory memory, VcpuState state, int physicalAddressBits)
    {
        if (PageWalker.ModeFor(state.Cr0, state.Cr4, state.Efer) == PagingMode.Disabled)
        {
            return null;
        }

        var walker = new PageWalker(new MmuOptions { PhysicalAddressBits = physicalAddressBits });
        Span<ulong> pdptes = stackalloc ulong[4];
        var tables = new ReadOnlyTableMemory(memory);
        if (PageWalker.ModeFor(state.Cr0, state.Cr4, state.Efer) == PagingMode.Pae && !walker.TryReadPdptes(ref tables, state.Cr3, pdptes))
        {
            pdptes.Clear();
        }

        walker.SetControlRegisters(state.Cr0, state.Cr3, state.Cr4, state.Efer, pdptes);
        return walker;
    }

    private static bool TryTranslate(GuestMemory memory, PageWalker? walker, ulong linear, out ulong physical)
    {
        if (walker is null)
        {
            physical = linear & 0xFFFF_FFFF;
            return true;
        }

        // A supervisor read with RFLAGS.AC set: user pages are readable too, whatever SMAP says.
        var tables = new ReadOnlyTableMemory(memory);
        if (walker.Walk(ref tables, linear, PageAccess.AlignmentCheck, out PageWalk walk))
        {
            physical = walk.PhysicalAddress;
            return true;
        }

        physical = 0;
        return false;
    }

    /// <summary>Guest page tables, read-only: the walk leaves accessed and dirty bits alone.</summary>
    private readonly struct ReadOnlyTableMemory : IPageTableMemory
    {
        private readonly GuestTableMemory _memory;

        public ReadOnlyTableMemory(GuestMemory memory)
        {
            _memory = new GuestTableMemory(memory);
        }

        public nint MapEntry(ulong physicalAddress, int size, out bool writable)
        {
            nint host = _memory.MapEntry(physicalAddress, size, out _);
            writable = false;
            return host;
        }
    }
}
