using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Tests.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;

namespace SharpVisor.Emulator.Tests.Smp;

/// <summary>
/// Two (or more) CPUs over one guest memory and one write tracker, as the software accelerator
/// builds them: 64-bit mode, CPL 0, the first 4 MiB identity-mapped with 4 KiB pages (so the
/// page tables are ordinary shadowed frames, themselves mapped for the guest to edit).
/// </summary>
internal sealed class SmpMachine : IDisposable
{
    public const ulong MappedSize = 4 << 20;
    public const ulong TableArea = 0x38_0000;

    private readonly SecondLevelTable? _secondLevel;

    public SmpMachine(MmuMode mode, int cpus = 2)
    {
        Memory = GuestMemory.CreateRam(8 << 20);
        Tracker = new WriteTracker(Memory);
        Tables = new PageTables(Memory, PagingMode.FourLevel, TableArea);
        for (ulong page = 0; page < MappedSize; page += 0x1000)
        {
            Tables.Map(page, page, PageTables.P | PageTables.RW);
        }

        _secondLevel = mode == MmuMode.Nested ? SecondLevelTable.Build(Memory) : null;
        var options = new MmuOptions
        {
            PhysicalAddressBits = CpuModel.Default.PhysicalAddressBits,
            Supports1GiBPages = CpuModel.Default.Has(CpuFeature.Page1Gb),
        };
        Cpus = new X86Cpu[cpus];
        for (int i = 0; i < cpus; i++)
        {
            IMmu mmu = MmuFactory.Create(mode, Memory, _secondLevel, options, Tracker);
            Cpus[i] = new X86Cpu(new PhysicalMemory(Memory), CpuModel.Default, mmu);
        }
    }

    public GuestMemory Memory { get; }

    public WriteTracker Tracker { get; }

    public PageTables Tables { get; }

    public X86Cpu[] Cpus { get; }

    /// <summary>Assembles code at <paramref name="address"/> and starts CPU <paramref name="cpu"/> there in 64-bit mode with its own stack.</summary>
    public void Start(int cpu, ulong address, Action<Assembler> build)
    {
        Load(address, build);
        Cpus[cpu].SetState(new VcpuState
        {
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0Paging | VcpuState.Cr0ExtensionType | VcpuState.Cr0NumericError | VcpuState.Cr0WriteProtect,
            Cr4 = VcpuState.Cr4Pae | VcpuState.Cr4OsFxsr | VcpuState.Cr4OsXmmExcpt,
            Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive | VcpuState.EferNoExecute,
            Cr3 = Tables.Root,
            Cs = SegmentRegister.Flat(0x08, 0xB, longMode: true, defaultBig: false),
            Ss = SegmentRegister.Flat(0x10, 0x3, false, true),
            Ds = SegmentRegister.Flat(0, 0x3, false, true),
            Es = SegmentRegister.Flat(0, 0x3, false, true),
            Fs = SegmentRegister.Flat(0, 0x3, false, true),
            Gs = SegmentRegister.Flat(0, 0x3, false, true),
            Rip = address,
            Rsp = 0x30_0000 + ((ulong)cpu * 0x1_0000),
            Rflags = 0x2,
        });
    }

    /// <summary>Writes code into guest memory (before any CPU runs).</summary>
    public void Load(ulong address, Action<Assembler> build) => Memory.Write(address, GuestCode.Assemble(64, address, build));

    /// <summary>Runs every CPU on its own thread until each halts (or hits the limit); the results by CPU.</summary>
    public CpuRunResult[] RunAll(long limit = 50_000_000)
    {
        Task<CpuRunResult>[] runs = Cpus
            .Select(cpu => Task.Factory.StartNew(() => cpu.Run(limit), TaskCreationOptions.LongRunning))
            .ToArray();
        Assert.True(Task.WaitAll(runs, TimeSpan.FromSeconds(120)), "the CPUs did not stop");
        return runs.Select(t => t.Result).ToArray();
    }

    public void AssertHalted(CpuRunResult[] results)
    {
        for (int i = 0; i < results.Length; i++)
        {
            Assert.True(results[i].Reason == CpuStopReason.Halted, $"CPU {i}: expected HLT, got {results[i]} at RIP 0x{Cpus[i].Rip:x}");
        }
    }

    public void Dispose()
    {
        _secondLevel?.Dispose();
        Memory.Dispose();
    }
}
