using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Machine;
using SharpVisor.Memory;
using SharpVisor.TestSupport;

namespace SharpVisor.Emulator.Tests.SystemState;

/// <summary>
/// A tiny machine for system-level tests: 4 MiB of RAM, a Linux-like GDT (kernel and user code
/// and data, a 64-bit TSS), a 64-bit IDT, and 4-level page tables that identity-map the first
/// 4 MiB in 4 KiB pages (so single pages can be unmapped or made supervisor-only). Code is
/// assembled with Iced; handlers are usually a HLT so the test can read the frame they got.
/// The CPU runs in system mode (<see cref="X86Cpu.DeliverExceptions"/>).
/// </summary>
internal sealed class SystemMachine : IDisposable
{
    public const ulong GdtAddress = 0x1000;
    public const ulong IdtAddress = 0x2000;
    public const ulong TssAddress = 0x3000;
    public const ulong Tss32Address = 0x3800;
    public const ulong Idt32Address = 0x4000;
    public const ulong Tss32StackTop = 0x8_8000;
    public const ulong Pml4Address = 0x10000;
    public const ulong PdptAddress = 0x11000;
    public const ulong PdAddress = 0x12000;
    public const ulong PtAddress = 0x13000; // two page tables: 0-2 MiB and 2-4 MiB
    public const ulong KernelStackTop = 0x9_0000;
    public const ulong IstStackTop = 0x9_8000;
    public const ulong KernelCode = 0x10_0000;
    public const ulong HandlerCode = 0x18_0000;
    public const ulong UserCode = 0x20_0000;
    public const ulong UserStackTop = 0x28_0000;
    public const ulong UserDataArea = 0x30_0000;

    // Selectors as Linux lays them out (SYSCALL/SYSRET depend on the order).
    public const ushort KernelCode32 = 0x08;
    public const ushort KernelCode64 = 0x10;
    public const ushort KernelData = 0x18;
    public const ushort UserCode32 = 0x23;
    public const ushort UserData = 0x2B;
    public const ushort UserCode64 = 0x33;
    public const ushort Tss = 0x40;
    public const ushort Tss32 = 0x50;

    public SystemMachine(MmuMode mode = MmuMode.Shadow, CpuModel? model = null)
    {
        Memory = GuestMemory.CreateRam(4UL << 20);
        SecondLevel = mode == MmuMode.Nested ? SecondLevelTable.Build(Memory) : null;
        Mmu = MmuFactory.Create(mode, Memory, SecondLevel);
        Cpu = new X86Cpu(new PhysicalMemory(Memory), model, Mmu) { DeliverExceptions = true };
        WriteGdt();
        WritePageTables();
        WriteTss();
    }

    public GuestMemory Memory { get; }

    public SecondLevelTable? SecondLevel { get; }

    public IMmu Mmu { get; }

    public X86Cpu Cpu { get; }

    /// <summary>An 8-byte code/data descriptor: base 0, limit 4 GiB, the given type and flags.</summary>
    public static ulong Descriptor(int type, int dpl, bool longMode = false, bool big = true, bool present = true) =>
        0xFFFFUL | (0xFUL << 48) | ((ulong)(type | 0x10) << 40) | ((ulong)dpl << 45) | (present ? 1UL << 47 : 0)
        | (longMode ? 1UL << 53 : 0) | (big ? 1UL << 54 : 0) | (1UL << 55);

    public void SetGdtEntry(int index, ulong descriptor) => Memory.Write(GdtAddress + ((ulong)index * 8), descriptor);

    private void WriteGdt()
    {
        SetGdtEntry(0, 0);
        SetGdtEntry(1, Descriptor(0xB, 0, big: true));                 // 0x08 kernel code, 32-bit
        SetGdtEntry(2, Descriptor(0xB, 0, longMode: true, big: false)); // 0x10 kernel code, 64-bit
        SetGdtEntry(3, Descriptor(0x3, 0));                            // 0x18 kernel data
        SetGdtEntry(4, Descriptor(0xB, 3, big: true));                 // 0x23 user code, 32-bit
        SetGdtEntry(5, Descriptor(0x3, 3));                            // 0x2B user data
        SetGdtEntry(6, Descriptor(0xB, 3, longMode: true, big: false)); // 0x33 user code, 64-bit

        // 0x40: 64-bit TSS (16 bytes), available.
        ulong limit = 0x67;
        ulong low = limit | ((TssAddress & 0xFF_FFFF) << 16) | (0x89UL << 40) | ((TssAddress >> 24) << 56);
        SetGdtEntry(8, low);
        SetGdtEntry(9, TssAddress >> 32);

        // 0x50: 32-bit TSS, available.
        SetGdtEntry(10, limit | ((Tss32Address & 0xFF_FFFF) << 16) | (0x89UL << 40));
    }

    private void WriteTss()
    {
        Memory.Write(TssAddress + 4, KernelStackTop);   // RSP0
        Memory.Write(TssAddress + 36, IstStackTop);     // IST1
        Memory.Write(TssAddress + 0x66, (ushort)0x68);  // no I/O bitmap
        Memory.Write(Tss32Address + 4, (uint)Tss32StackTop); // ESP0
        Memory.Write(Tss32Address + 8, (uint)KernelData);    // SS0
        Memory.Write(Tss32Address + 0x66, (ushort)0x68);
    }

    private void WritePageTables()
    {
        Memory.Write(Pml4Address, PdptAddress | 7);
        Memory.Write(PdptAddress, PdAddress | 7);
        Memory.Write(PdAddress, PtAddress | 7);
        Memory.Write(PdAddress + 8, (PtAddress + 0x1000) | 7);
        for (ulong page = 0; page < 1024; page++)
        {
            MapPage(page << 12, page << 12, user: page << 12 >= UserCode);
        }
    }

    /// <summary>The page-table entry that maps <paramref name="linear"/> (below 4 MiB).</summary>
    public ulong PteAddress(ulong linear) => PtAddress + ((linear >> 12) * 8);

    /// <summary>Maps the 4 KiB page at <paramref name="linear"/> to <paramref name="physical"/> (writable; user or supervisor).</summary>
    public void MapPage(ulong linear, ulong physical, bool user, bool writable = true, bool executable = true) =>
        Memory.Write(PteAddress(linear), physical | 1 | (writable ? 2UL : 0) | (user ? 4UL : 0) | (executable ? 0 : 1UL << 63));

    public void UnmapPage(ulong linear) => Memory.Write(PteAddress(linear), 0UL);

    /// <summary>A 64-bit interrupt or trap gate in the IDT.</summary>
    public void SetGate(int vector, ulong handler, int dpl = 0, int ist = 0, bool trap = false, ushort selector = KernelCode64, bool present = true)
    {
        ulong low = (handler & 0xFFFF) | ((ulong)selector << 16) | ((ulong)ist << 32) | ((ulong)(trap ? 0xF : 0xE) << 40)
            | ((ulong)dpl << 45) | (present ? 1UL << 47 : 0) | ((handler >> 16 & 0xFFFF) << 48);
        Memory.Write(IdtAddress + ((ulong)vector * 16), low);
        Memory.Write(IdtAddress + ((ulong)vector * 16) + 8, handler >> 32);
    }

    /// <summary>Assembles <paramref name="build"/> at <paramref name="address"/>; returns the address after the code.</summary>
    public ulong Load(ulong address, Action<Assembler> build, int bitness = 64)
    {
        byte[] code = GuestCode.Assemble(bitness, address, build);
        Memory.Write(address, code);
        Cpu.InvalidateCode(address, (ulong)code.Length);
        return address + (ulong)code.Length;
    }

    /// <summary>A one-instruction handler (HLT) per vector at HandlerCode + vector * 16, for every vector.</summary>
    public void InstallHaltHandlers()
    {
        for (int vector = 0; vector < 256; vector++)
        {
            ulong handler = HandlerCode + ((ulong)vector * 16);
            Memory.Write(handler, (byte)0xF4);
            SetGate(vector, handler);
        }
    }

    public static ulong HaltHandler(int vector) => HandlerCode + ((ulong)vector * 16);

    /// <summary>A 32-bit interrupt (or trap) gate in the protected-mode IDT.</summary>
    public void SetGate32(int vector, ulong handler, int dpl = 0, bool trap = false, ushort selector = KernelCode32)
    {
        ulong gate = (handler & 0xFFFF) | ((ulong)selector << 16) | ((ulong)(trap ? 0xF : 0xE) << 40)
            | ((ulong)dpl << 45) | (1UL << 47) | ((handler >> 16 & 0xFFFF) << 48);
        Memory.Write(Idt32Address + ((ulong)vector * 8), gate);
    }

    /// <summary>HLT handlers for every vector in the 32-bit IDT.</summary>
    public void InstallHaltHandlers32()
    {
        for (int vector = 0; vector < 256; vector++)
        {
            Memory.Write(HaltHandler(vector), (byte)0xF4);
            SetGate32(vector, HaltHandler(vector));
        }
    }

    /// <summary>32-bit protected mode, CPL 0, paging off, flat segments, the 32-bit IDT and TSS.</summary>
    public void EnterProtectedMode32(ulong rip)
    {
        var state = new VcpuState
        {
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0ExtensionType | VcpuState.Cr0NumericError,
            Cs = SegmentRegister.Flat(KernelCode32, 0xB, longMode: false, defaultBig: true),
            Ss = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Ds = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Es = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Fs = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Gs = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Gdt = new DescriptorTable(GdtAddress, 0x5F),
            Idt = new DescriptorTable(Idt32Address, 0x7FF),
            Tr = new SegmentRegister { Selector = Tss32, Base = Tss32Address, Limit = 0x67, Type = 0xB, Present = true },
            Rip = rip,
            Rsp = KernelStackTop,
            Rflags = 0x2,
        };
        Cpu.SetState(state);
    }

    public void RunToHandler32(int vector) => RunToHandler(vector);

    /// <summary>64-bit long mode at CPL 0 with paging on, GDT/IDT/TR loaded, RIP at <paramref name="rip"/>.</summary>
    public void EnterLongMode(ulong rip = KernelCode)
    {
        var state = new VcpuState
        {
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0MonitorCoprocessor | VcpuState.Cr0ExtensionType
                | VcpuState.Cr0NumericError | VcpuState.Cr0WriteProtect | VcpuState.Cr0Paging,
            Cr3 = Pml4Address,
            Cr4 = VcpuState.Cr4Pae | VcpuState.Cr4Pge | VcpuState.Cr4OsFxsr | VcpuState.Cr4OsXmmExcpt,
            Efer = VcpuState.EferSyscall | VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive | VcpuState.EferNoExecute,
            Cs = SegmentRegister.Flat(KernelCode64, 0xB, longMode: true, defaultBig: false),
            Ss = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Ds = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Es = SegmentRegister.Flat(KernelData, 0x3, false, true),
            Fs = SegmentRegister.Flat(0, 0x3, false, true),
            Gs = SegmentRegister.Flat(0, 0x3, false, true),
            Gdt = new DescriptorTable(GdtAddress, 0x7F),
            Idt = new DescriptorTable(IdtAddress, 0xFFF),
            Tr = new SegmentRegister { Selector = Tss, Base = TssAddress, Limit = 0x67, Type = 0xB, Present = true },
            Rip = rip,
            Rsp = KernelStackTop,
            Rflags = 0x2,
        };
        Cpu.SetState(state);
    }

    /// <summary>The same long-mode state at CPL 3 (user code and stack selectors), interrupts on.</summary>
    public void EnterUserMode(ulong rip = UserCode)
    {
        EnterLongMode(rip);
        VcpuState state = Cpu.GetState();
        state.Cs = SegmentRegister.Flat(UserCode64, 0xB, longMode: true, defaultBig: false) with { Dpl = 3 };
        state.Ss = SegmentRegister.Flat(UserData, 0x3, false, true) with { Dpl = 3 };
        state.Ds = state.Es = SegmentRegister.Flat(UserData, 0x3, false, true) with { Dpl = 3 };
        state.Rsp = UserStackTop;
        state.Rflags = 0x202;
        Cpu.SetState(state);
    }

    /// <summary>Real mode at 0000:<paramref name="ip"/> with all segments at 0.</summary>
    public void EnterRealMode(ushort ip, ushort sp = 0x7000)
    {
        Cpu.Reset();
        VcpuState state = Cpu.GetState();
        SegmentRegister real = new() { Selector = 0, Base = 0, Limit = 0xFFFF, Type = 3, Present = true, CodeOrData = true };
        state.Cs = real with { Type = 0xB };
        state.Ds = state.Es = state.Fs = state.Gs = state.Ss = real;
        state.Rip = ip;
        state.Rsp = sp;
        Cpu.SetState(state);
    }

    /// <summary>Runs until RIP reaches <paramref name="address"/> and asserts it got there.</summary>
    public void RunTo(ulong address, long limit = 1_000_000)
    {
        Cpu.AddBreakpoint(address);
        CpuRunResult result = Cpu.Run(limit);
        Cpu.ClearBreakpoints();
        Assert.True(result.Reason == CpuStopReason.Breakpoint && Cpu.Rip == address, $"expected to reach 0x{address:x}, got {result} at RIP 0x{Cpu.Rip:x}");
    }

    /// <summary>Runs until HLT and asserts it got there.</summary>
    public void RunToHalt(long limit = 1_000_000)
    {
        CpuRunResult result = Cpu.Run(limit);
        Assert.True(result.Reason == CpuStopReason.Halted, $"expected HLT, got {result} at RIP 0x{Cpu.Rip:x}");
    }

    /// <summary>Runs until HLT and asserts it halted in the HLT handler of <paramref name="vector"/>.</summary>
    public void RunToHandler(int vector, long limit = 1_000_000)
    {
        RunToHalt(limit);
        Assert.True(HaltHandler(vector) + 1 == Cpu.Rip, $"expected the handler of vector {vector}, halted at RIP 0x{Cpu.Rip:x}");
    }

    /// <summary>The 8-byte stack slot <paramref name="index"/> above RSP.</summary>
    public ulong StackSlot(int index) => Memory.Read<ulong>(Cpu.GetRegister(4) + ((ulong)index * 8));

    public void Dispose()
    {
        SecondLevel?.Dispose();
        Memory.Dispose();
    }
}
