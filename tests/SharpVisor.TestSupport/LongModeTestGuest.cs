using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.TestSupport;

/// <summary>
/// Puts a tiny test guest straight into 64-bit long mode, without any boot code: a GDT and
/// identity-mapped page tables (the first 4 GiB in 2 MiB pages, so the MMIO hole is reachable)
/// at fixed low addresses, and a <see cref="VcpuState"/> that uses them.
/// Layout: GDT 0x500, PML4 0x1000, PDPT 0x2000, page directories 0x3000-0x6FFF,
/// stack below 0x8000 (grows down towards 0x7000), code at <see cref="CodeAddress"/>.
/// </summary>
public static class LongModeTestGuest
{
    public const ulong GdtAddress = 0x500;
    public const ulong Pml4Address = 0x1000;
    public const ulong PdptAddress = 0x2000;
    public const ulong PageDirectoryAddress = 0x3000;
    public const ulong StackTop = 0x8000;
    public const ulong CodeAddress = 0x10000;

    public const ushort CodeSelector = 0x08;
    public const ushort DataSelector = 0x10;

    private const ulong Present = 1 << 0;
    private const ulong Writable = 1 << 1;
    private const ulong LargePage = 1 << 7;

    /// <summary>Writes the GDT and page tables, then <paramref name="code"/> at <see cref="CodeAddress"/>.</summary>
    public static void Load(GuestMemory memory, byte[] code)
    {
        WriteTables(memory);
        memory.Write(CodeAddress, code);
    }

    public static void WriteTables(GuestMemory memory)
    {
        // Null, 64-bit code (L=1, P, DPL0, exec/read), data (read/write).
        memory.Write<ulong>(GdtAddress, 0);
        memory.Write<ulong>(GdtAddress + CodeSelector, 0x00AF_9B00_0000_FFFF);
        memory.Write<ulong>(GdtAddress + DataSelector, 0x00CF_9300_0000_FFFF);

        memory.Write(Pml4Address, PdptAddress | Present | Writable);
        for (ulong gib = 0; gib < 4; gib++)
        {
            ulong directory = PageDirectoryAddress + (gib * 0x1000);
            memory.Write(PdptAddress + (gib * 8), directory | Present | Writable);
            for (ulong entry = 0; entry < 512; entry++)
            {
                ulong physical = (gib << 30) | (entry << 21);
                memory.Write(directory + (entry * 8), physical | Present | Writable | LargePage);
            }
        }
    }

    /// <summary>
    /// Sets <paramref name="state"/> (normally from GetState, so accelerator-owned fields such as
    /// the APIC base stay as they are) to 64-bit mode at <paramref name="rip"/>, interrupts off.
    /// </summary>
    public static VcpuState Configure(VcpuState state, ulong rip = CodeAddress, ulong rsp = StackTop)
    {
        state.Cs = SegmentRegister.Flat(CodeSelector, 0xB, longMode: true, defaultBig: false);
        SegmentRegister data = SegmentRegister.Flat(DataSelector, 0x3, longMode: false, defaultBig: true);
        state.Ds = data;
        state.Es = data;
        state.Fs = data;
        state.Gs = data;
        state.Ss = data;
        state.Gdt = new DescriptorTable(GdtAddress, 3 * 8 - 1);
        state.Cr3 = Pml4Address;
        state.Cr4 = VcpuState.Cr4Pae;
        state.Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0ExtensionType | VcpuState.Cr0Paging;
        state.Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive;
        state.Rip = rip;
        state.Rsp = rsp;
        state.Rflags = 0x2;
        return state;
    }
}
