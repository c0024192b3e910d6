using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Bench.Mmu;

/// <summary>Guest memory with a 64 MiB kernel mapping, two processes sharing it, and an MMU of one mode.</summary>
internal sealed class Setup : IDisposable
{
    public const ulong KernelBase = 0xFFFF_8880_0000_0000;
    public const ulong UserBase = 0x0000_5555_0000_0000;
    public const ulong TableAliasBase = 0xFFFF_C900_0000_0000;
    public const ulong KernelPages = 16384;
    public const ulong KernelData = 0x400_0000;
    private const ulong TableArea = 0x100_0000;
    private const ulong TableAreaSize = 16 << 20;

    private readonly GuestMemory _memory;
    private readonly SecondLevelTable? _secondLevel;
    private ulong _nextTable = TableArea;

    public Setup(MmuMode mode)
    {
        _memory = GuestMemory.CreateRam(256 << 20);
        var kernel = new GuestAddressSpace(_memory, AllocateTable);
        KernelPtes = new ulong[KernelPages];
        for (ulong i = 0; i < KernelPages; i++)
        {
            KernelPtes[i] = kernel.Map(KernelBase + (i << 12), KernelData + (i << 12));
        }

        Processes = new GuestAddressSpace[2];
        for (int p = 0; p < 2; p++)
        {
            var process = new GuestAddressSpace(_memory, AllocateTable);
            process.Share(kernel, KernelBase);
            for (ulong page = 0; page < 64; page++)
            {
                process.Map(UserBase + (page << 12), 0x800_0000 + ((ulong)p << 20) + (page << 12));
            }

            Processes[p] = process;
        }

        // The kernel's view of its own page tables (mapped last, in the table area's tail).
        for (ulong offset = 0; offset < TableAreaSize / 2; offset += 4096)
        {
            kernel.Map(TableAliasBase + offset, TableArea + offset);
        }

        foreach (GuestAddressSpace process in Processes)
        {
            process.Share(kernel, TableAliasBase);
        }

        _secondLevel = mode == MmuMode.Nested ? SecondLevelTable.Build(_memory) : null;
        Mmu = MmuFactory.Create(mode, _memory, _secondLevel);
        ulong cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0Paging | VcpuState.Cr0WriteProtect;
        ulong efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive | VcpuState.EferNoExecute;
        if (!Mmu.LoadControlRegisters(cr0, Processes[0].Root, VcpuState.Cr4Pae | VcpuState.Cr4Pge, efer))
        {
            throw new InvalidOperationException("paging setup refused");
        }
    }

    public IMmu Mmu { get; }

    public GuestAddressSpace[] Processes { get; }

    public ulong[] KernelPtes { get; }

    public ulong TableAlias(ulong physical) => TableAliasBase + (physical - TableArea);

    public void Dispose()
    {
        _secondLevel?.Dispose();
        _memory.Dispose();
    }

    private ulong AllocateTable()
    {
        ulong table = _nextTable;
        _nextTable += 4096;
        if (_nextTable > TableArea + (TableAreaSize / 2))
        {
            throw new InvalidOperationException("benchmark page-table area exhausted");
        }

        _memory.Fill(table, 4096, 0);
        return table;
    }
}
