using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;
using SharpVisor.Xen.Pv;

namespace SharpVisor.Xen.Tests;

/// <summary>
/// The PV CPU against a scripted vCPU: hypercalls by SYSCALL, the bounce frame Xen builds for
/// exceptions, the iret hypercall (which can never reach ring 0), the GDT checks, the
/// forced-emulation CPUID and WRMSR emulation — and the hostile cases answered with the errno or
/// a domain crash, never a host exception.
/// </summary>
public sealed class PvCpuTests : IDisposable
{
    private const ulong Stack = 0x8_0000;
    private const ulong Handler = 0x4_0000;
    private const ulong Code = 0x5_0000;
    private const ulong Args = 0x6_0000;
    private const ulong SharedInfo = 0x310UL << 12;
    private const ulong GdtFrame = 0x300;

    private readonly GuestMemory _memory = GuestMemory.CreateRam(4 << 20);
    private readonly XenDomain _xen;
    private readonly FakePvContext _cpu;
    private readonly PvCpu _pv;

    public PvCpuTests()
    {
        _xen = new XenDomain(_memory, new XenDomainOptions());
        _xen.Connect(new FakeHypervisorHost());
        var p2m = new PvPhysToMachine([.. Enumerable.Range(0, 0x200).Select(i => (ulong)i)], 0x400, seed: 3);
        _xen.AttachPvPaging(new PvPageTables(_memory, p2m, _xen.Counters));
        _pv = _xen.AttachPvCpu([GdtFrame]);
        _xen.PlacePvSharedInfo(SharedInfo);
        _cpu = new FakePvContext(_memory) { Rip = Code };
        _cpu.SetRegister(4, Stack);
    }

    public void Dispose()
    {
        _xen.Dispose();
        _memory.Dispose();
    }

    [Fact]
    public void SyscallFromTheGuestKernel_IsAHypercall()
    {
        _cpu.SetRegister(0, (ulong)HypercallOp.XenVersion);
        _cpu.SetRegister(7, 0);                                   // XENVER_version
        Assert.True(_pv.OnSyscall(_cpu, Code + 2));
        Assert.Equal((4UL << 16) | 17, _cpu.GetRegister(0));
        Assert.Equal(Code + 2, _cpu.Rip);
        Assert.Equal(Code + 2, _cpu.GetRegister(1));              // RCX as the instruction leaves it

        // A PV domain reports PV features: never auto-translated, never a callback vector.
        _memory.Write(Args, 0u);
        _cpu.SetRegister(0, (ulong)HypercallOp.XenVersion);
        _cpu.SetRegister(7, 6);
        _cpu.SetRegister(6, Args);
        _pv.OnSyscall(_cpu, Code + 2);
        uint features = _memory.Read<uint>(Args + 4);
        Assert.Equal(0u, features & (1u << 2));
        Assert.NotEqual(0u, features & (1u << 7));
    }

    [Fact]
    public void AnException_IsBouncedToTheTrapTable_WithXensFrame()
    {
        SetTrap(14, Handler, flags: 4);                           // flag 4: mask events on entry
        _cpu.SetRegister(1, 0x1111);
        _cpu.SetRegister(11, 0x2222);
        _cpu.Cr2 = 0xDEAD_B000;
        _memory.Write(SharedInfo + 1, (byte)0);                  // events unmasked before
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(14, 6, ParavirtualEventKind.Exception, Code)));

        ulong sp = Stack - (8 * 8);
        Assert.Equal(sp, _cpu.GetRegister(4));
        Assert.Equal(Handler, _cpu.Rip);
        ulong[] frame = [.. Enumerable.Range(0, 8).Select(i => _memory.Read<ulong>(sp + ((ulong)i * 8)))];
        Assert.Equal(0x1111UL, frame[0]);                         // RCX
        Assert.Equal(0x2222UL, frame[1]);                         // R11
        Assert.Equal(6UL, frame[2]);                              // error code
        Assert.Equal(Code, frame[3]);                             // RIP
        Assert.Equal((ulong)(PvCpu.FlatKernelCs & ~3), frame[4]); // CS with RPL 0: "from the kernel"; saved mask 0 above
        Assert.NotEqual(0UL, frame[5] & (1UL << 9));              // RFLAGS.IF = events were enabled
        Assert.Equal(Stack, frame[6]);
        Assert.Equal(1, _memory.Read<byte>(SharedInfo + 1));     // masked now
        Assert.Equal(0xDEAD_B000UL, _memory.Read<ulong>(SharedInfo + 16));   // vcpu_info.arch.cr2
    }

    [Fact]
    public void AnExceptionWithoutAHandler_CrashesTheDomain_NotTheHost()
    {
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(13, 0, ParavirtualEventKind.Exception, Code)));
        Assert.Contains("no handler", _cpu.Crash, StringComparison.Ordinal);
        Assert.Equal(1, _xen.Counters["pv-domain-crash"]);
    }

    [Fact]
    public void Iret_ForcesRingThree_AndFollowsIfForTheEventMask()
    {
        // Return to "kernel CS 0x10" (RPL 0) with IF clear: CS and SS get RPL 3, RFLAGS.IF is set anyway, events masked.
        WriteIretFrame(rax: 5, rip: 0x7_0000, cs: 0x10, rflags: 0x2, rsp: 0x9_0000, ss: 0x18);
        _cpu.SetRegister(0, (ulong)HypercallOp.Iret);
        Assert.True(_pv.OnSyscall(_cpu, Code + 2));
        Assert.Equal(0x13, _cpu.GetSelector(ParavirtualSegment.Cs));
        Assert.Equal(0x1B, _cpu.GetSelector(ParavirtualSegment.Ss));
        Assert.Equal(0x7_0000UL, _cpu.Rip);
        Assert.Equal(0x9_0000UL, _cpu.GetRegister(4));
        Assert.Equal(5UL, _cpu.GetRegister(0));
        Assert.NotEqual(0UL, _cpu.Rflags & (1UL << 9));
        Assert.Equal(0UL, _cpu.Rflags & (3UL << 12));             // IOPL never comes from the guest
        Assert.Equal(1, _memory.Read<byte>(SharedInfo + 1));
        Assert.Null(_cpu.Crash);
    }

    [Fact]
    public void IretToUserMode_WithoutUserPageTables_CrashesTheDomain()
    {
        WriteIretFrame(rax: 0, rip: 0x40_0000, cs: 0x33, rflags: 0x202, rsp: 0x9_0000, ss: 0x2B);
        _cpu.SetRegister(0, (ulong)HypercallOp.Iret);
        _pv.OnSyscall(_cpu, Code + 2);
        Assert.Contains("no user page tables", _cpu.Crash, StringComparison.Ordinal);
    }

    [Fact]
    public void IretToACsThatDoesNotLoad_IsTheGuestsGeneralProtectionFault_AtTheReturnState()
    {
        // Xen's iretq faults "in guest context": #GP(0) for the null CS, to the trap table, with the frame of where the iret went.
        SetTrap(13, Handler, flags: 0);
        _memory.Write(SharedInfo + 1, (byte)0);
        WriteIretFrame(rax: 7, rip: 0x7_0000, cs: 0, rflags: 0x202, rsp: 0x9_0000, ss: PvCpu.FlatKernelSs);
        _cpu.SetRegister(0, (ulong)HypercallOp.Iret);
        Assert.True(_pv.OnSyscall(_cpu, Code + 2));

        Assert.Null(_cpu.Crash);
        Assert.Equal(Handler, _cpu.Rip);
        Assert.Equal(PvCpu.FlatKernelCs, _cpu.GetSelector(ParavirtualSegment.Cs));
        ulong sp = 0x9_0000 - (8 * 8);
        Assert.Equal(sp, _cpu.GetRegister(4));
        ulong[] frame = [.. Enumerable.Range(0, 8).Select(i => _memory.Read<ulong>(sp + ((ulong)i * 8)))];
        Assert.Equal(0UL, frame[2]);                              // error code: the null selector
        Assert.Equal(0x7_0000UL, frame[3]);                       // RIP: the iret's target
        Assert.Equal(0UL, frame[4]);                              // CS 0x3 as the kernel's (RPL cleared), mask 0
        Assert.Equal(0x9_0000UL, frame[6]);                       // RSP: the iret's target
        Assert.Equal((ulong)PvCpu.FlatKernelSs, frame[7]);
        Assert.Equal(7UL, _cpu.GetRegister(0));                   // RAX still from the iret frame
        Assert.Equal(1, _xen.PvTables!.Counters["pv-refused-iret-selector"]);
        Assert.Equal(1, _xen.Counters["pv-trap-13"]);
    }

    [Fact]
    public void IretToANotPresentCodeSegment_IsSegmentNotPresent_AndWithoutAHandlerCrashesTheDomain()
    {
        // GDT entry 5 of the vCPU's (hypervisor) GDT: a 64-bit code descriptor, DPL 3, not present.
        _memory.Write((GdtFrame << 12) + (5 * 8), 0x00AF_7B00_0000_FFFFUL);
        _cpu.Unloadable.Add(0x2B);
        SetTrap(11, Handler, flags: 0);
        WriteIretFrame(rax: 0, rip: 0x7_0000, cs: 0x28, rflags: 0x202, rsp: 0x9_0000, ss: PvCpu.FlatKernelSs);
        _cpu.SetRegister(0, (ulong)HypercallOp.Iret);
        _pv.OnSyscall(_cpu, Code + 2);
        Assert.Null(_cpu.Crash);
        Assert.Equal(Handler, _cpu.Rip);
        Assert.Equal(0x28UL, _memory.Read<ulong>(0x9_0000 - (6 * 8)));   // error code: the selector
        Assert.Equal(1, _xen.Counters["pv-trap-11"]);

        // A bad SS with no #GP handler: the domain is crashed with the reason, not the host.
        _cpu.Rip = Code;
        _cpu.SetRegister(4, Stack);
        _cpu.Unloadable.Add(0x1234 | 3);
        WriteIretFrame(rax: 0, rip: 0x7_0000, cs: PvCpu.FlatKernelCs & ~3, rflags: 0x202, rsp: 0x9_0000, ss: 0x1234);
        _cpu.SetRegister(0, (ulong)HypercallOp.Iret);
        _pv.OnSyscall(_cpu, Code + 2);
        Assert.Contains("no handler for exception 13", _cpu.Crash, StringComparison.Ordinal);
        Assert.Equal(PvCpu.FlatKernelCs, _cpu.GetSelector(ParavirtualSegment.Cs));    // the iretq loads both or neither
    }

    [Fact]
    public void SetGdt_FixesRingZeroToRingThree_RefusesSystemDescriptors_AndPinsTheFrames()
    {
        const ulong frame = 0x40;
        _memory.Write(frame << 12, 0UL);
        _memory.Write((frame << 12) + 8, 0x00AF_9B00_0000_FFFFUL);          // a ring-0 64-bit code segment
        _memory.Write(Args, frame);
        Assert.Equal(0L, Call(HypercallOp.SetGdt, Args, 2));
        ulong installed = _memory.Read<ulong>((GdtFrame << 12) + 8);
        Assert.Equal(3UL, (installed >> 45) & 3);                           // DPL 3: the guest cannot describe ring 0
        Assert.Equal((PvCpu.GdtBase(0), (ushort)0xFFFF), _cpu.Gdt);
        Assert.Equal(PvPageType.SegmentDescriptor, _xen.PvTables!.TypeInUse(frame));

        // The frame may not become writable while it is a GDT, nor a page table.
        Assert.Equal(-XenErrno.EINVAL, _xen.PvTables.MmuextOp(_xen.PvPaging(0), PvMmuextCommand.PinL1Table, frame, 0));

        // A TSS descriptor in a GDT: refused, and the old GDT stays.
        const ulong bad = 0x41;
        _memory.Write((bad << 12) + 8, 0x0000_8900_0000_0067UL);
        _memory.Write(Args, bad);
        Assert.Equal(-XenErrno.EINVAL, Call(HypercallOp.SetGdt, Args, 2));
        Assert.Equal(PvPageType.None, _xen.PvTables.TypeInUse(bad));
        Assert.Equal(installed, _memory.Read<ulong>((GdtFrame << 12) + 8));

        // More than 14 pages of entries, or a frame that is not the domain's.
        Assert.Equal(-XenErrno.EINVAL, Call(HypercallOp.SetGdt, Args, (14 * 512) + 1));
        _memory.Write(Args, 0x3F0UL);
        Assert.Equal(-XenErrno.EINVAL, Call(HypercallOp.SetGdt, Args, 2));

        // update_descriptor reaches the installed copy, with the same checks.
        Assert.Equal(0L, Call(HypercallOp.UpdateDescriptor, (frame << 12) + 8, 0x00CF_9300_0000_FFFFUL));
        Assert.Equal(3UL, (_memory.Read<ulong>((GdtFrame << 12) + 8) >> 45) & 3);
        Assert.Equal(-XenErrno.EINVAL, Call(HypercallOp.UpdateDescriptor, (frame << 12) + 8, 0x0000_8900_0000_0067UL));
    }

    [Fact]
    public void PrivilegedInstructions_AreEmulatedAsXenDoes_OrReflected()
    {
        // ud2; .ascii "xen"; cpuid — leaf 1 gets the hypervisor bit and loses x2APIC, PSE and PGE
        // (PV has no superpages or global pages), the extended leaf loses 1 GiB pages; the rest stays.
        _memory.Write(Code, (byte[])[0x0F, 0x0B, (byte)'x', (byte)'e', (byte)'n', 0x0F, 0xA2]);
        _cpu.SetRegister(0, 1);
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(6, null, ParavirtualEventKind.Exception, Code)));
        Assert.Equal(Code + 7, _cpu.Rip);
        Assert.NotEqual(0UL, _cpu.GetRegister(1) & (1UL << 31));
        Assert.Equal(0UL, _cpu.GetRegister(1) & (1UL << 21));
        Assert.Equal((1UL << 0) | (1UL << 4), _cpu.GetRegister(2));
        _cpu.Rip = Code;
        _cpu.SetRegister(0, 0x8000_0001);
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(6, null, ParavirtualEventKind.Exception, Code)));
        Assert.Equal((1UL << 20) | (1UL << 29), _cpu.GetRegister(2));

        // wrmsr GS_BASE (startup_xen's first act): emulated.
        _cpu.Rip = Code;
        _memory.Write(Code, (byte[])[0x0F, 0x30]);
        _cpu.SetRegister(1, 0xC000_0101);
        _cpu.SetRegister(0, 0x8301_A000);
        _cpu.SetRegister(2, 0xFFFF_FFFF);
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(13, 0, ParavirtualEventKind.Exception, Code)));
        Assert.Equal(0xFFFF_FFFF_8301_A000UL, _cpu.GsBase);
        Assert.Equal(Code + 2, _cpu.Rip);

        // An MSR Xen does not give a PV guest: the #GP goes to the guest's handler.
        SetTrap(13, Handler, flags: 0);
        _cpu.Rip = Code;
        _cpu.SetRegister(1, 0x1234);
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(13, 0, ParavirtualEventKind.Exception, Code)));
        Assert.Equal(Handler, _cpu.Rip);
        Assert.Equal(1, _xen.Counters["pv-wrmsr-refused-1234"]);
    }

    [Fact]
    public void MovToControlRegisters_IsEmulatedAsXensWriteCr()
    {
        const ulong visible = (1UL << 5) | (1UL << 9) | (1UL << 10);
        const ulong fsgsbase = 1UL << 16;
        const ulong osxsave = 1UL << 18;

        // mov %rax,%cr4 (xen_write_cr4 → native_write_cr4): the guest-controlled bits the CPUID
        // policy offers reach the processor (FSGSBASE here; XSAVE is not offered), the rest is Xen's.
        _cpu.Rip = Code;
        _memory.Write(Code, (byte[])[0x0F, 0x22, 0xE0]);
        _cpu.SetRegister(0, visible | fsgsbase | osxsave | (1UL << 7));
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(13, 0, ParavirtualEventKind.Exception, Code)));
        Assert.Equal(Code + 3, _cpu.Rip);
        Assert.Equal(visible | fsgsbase, _cpu.Cr4);

        // mov %cr4,%rbx reads Xen's visible bits and the guest's own.
        _cpu.Rip = Code;
        _memory.Write(Code, (byte[])[0x0F, 0x20, 0xE3]);
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(13, 0, ParavirtualEventKind.Exception, Code)));
        Assert.Equal(visible | fsgsbase, _cpu.GetRegister(3));

        // mov %rax,%cr0 may set TS; clearing PG is refused: the #GP goes to the guest.
        _cpu.Rip = Code;
        _memory.Write(Code, (byte[])[0x0F, 0x22, 0xC0]);
        _cpu.SetRegister(0, 0x8001_003BUL);
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(13, 0, ParavirtualEventKind.Exception, Code)));
        Assert.True(_cpu.TaskSwitched);
        SetTrap(13, Handler, flags: 0);
        _cpu.Rip = Code;
        _cpu.SetRegister(0, 0x0001_0033UL);
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(13, 0, ParavirtualEventKind.Exception, Code)));
        Assert.Equal(Handler, _cpu.Rip);
    }

    [Fact]
    public void Multicall_RunsEachEntry_AndRefusesNesting()
    {
        // Two entries: xen_version(version) and a nested multicall.
        _memory.Write(Args, (ulong)HypercallOp.XenVersion);
        _memory.Write(Args + 16, 0UL);
        _memory.Write(Args + 64, (ulong)HypercallOp.Multicall);
        Assert.Equal(0L, Call(HypercallOp.Multicall, Args, 2));
        Assert.Equal((4L << 16) | 17, (long)_memory.Read<ulong>(Args + 8));
        Assert.Equal(-XenErrno.EINVAL, (long)_memory.Read<ulong>(Args + 64 + 8));
    }

    private long Call(HypercallOp op, ulong a0 = 0, ulong a1 = 0)
    {
        _cpu.SetRegister(0, (ulong)op);
        _cpu.SetRegister(7, a0);
        _cpu.SetRegister(6, a1);
        _pv.OnSyscall(_cpu, _cpu.Rip);
        return (long)_cpu.GetRegister(0);
    }

    private void SetTrap(byte vector, ulong address, byte flags)
    {
        _memory.Write(Args + 0x800, vector);
        _memory.Write(Args + 0x801, flags);
        _memory.Write(Args + 0x802, PvCpu.FlatKernelCs);
        _memory.Write(Args + 0x808, address);
        _memory.Write(Args + 0x810, 0UL);
        _memory.Write(Args + 0x818, 0UL);
        Assert.Equal(0L, Call(HypercallOp.SetTrapTable, Args + 0x800));
    }

    [Fact]
    public void StoresIntoAValidatedL1_AreEmulatedAsValidatedL1Updates_AndARefusedEntryIsTheGuestsPageFault()
    {
        // L4 → L3 → L2 → L1, the L1 mapping itself read-only at VA 0x1000 (as Linux maps its tables) and a data page.
        const ulong L4 = 0x100, L3 = 0x101, L2 = 0x102, L1 = 0x103, Data = 0x104, Other = 0x105;
        const ulong P = PvPte.Present, Rw = PvPte.Writable;
        _memory.Write(L4 << 12, (L3 << 12) | P | Rw);
        _memory.Write(L3 << 12, (L2 << 12) | P | Rw);
        _memory.Write(L2 << 12, (L1 << 12) | P | Rw);
        _memory.Write((L1 << 12) + 8, (L1 << 12) | P);
        _memory.Write((L1 << 12) + 16, (Data << 12) | P | Rw);
        PvPageTables tables = _xen.PvTables!;
        Assert.Equal(0, tables.MmuextOp(_xen.PvPaging(0), PvMmuextCommand.PinL4Table, L4, 0));
        Assert.Equal(0, tables.MmuextOp(_xen.PvPaging(0), PvMmuextCommand.NewBaseptr, L4, 0));
        SetTrap(14, Handler, flags: 0);
        static ulong Slot(int n) => 0x1000 + ((ulong)n * 8);
        ulong Entry(int n) => _memory.Read<ulong>((L1 << 12) + ((ulong)n * 8)) & ~(PvPte.User | PvPte.GuestKernel | PvPte.Accessed | PvPte.Dirty);

        // MOV [rdi], rsi: a new writable mapping of Other in entry 3, applied as an L1 update (Other now typed writable).
        StoreIntoTable([0x48, 0x89, 0x37], Slot(3), rsi: (Other << 12) | P | Rw);
        Assert.Equal(Code + 3, _cpu.Rip);
        Assert.Equal((Other << 12) | P | Rw, Entry(3));
        Assert.Equal(PvPageType.Writable, tables.TypeInUse(Other));

        // MOV qword [rdi], imm32 (0): clears it again, releasing Other.
        StoreIntoTable([0x48, 0xC7, 0x07, 0, 0, 0, 0], Slot(3));
        Assert.Equal(0UL, Entry(3));
        Assert.Equal(PvPageType.None, tables.TypeInUse(Other));

        // XCHG [rdi], rax: the old entry comes back in RAX (Linux's ptep_get_and_clear).
        StoreIntoTable([0x48, 0x87, 0x07], Slot(2), rax: (Other << 12) | P);
        Assert.Equal((Data << 12) | P | Rw, _cpu.GetRegister(0) & ~(PvPte.User | PvPte.GuestKernel | PvPte.Accessed | PvPte.Dirty));
        Assert.Equal((Other << 12) | P, Entry(2));

        // LOCK CMPXCHG [rdi], rsi: writes when RAX holds the entry (ZF set), else loads RAX and writes nothing.
        ulong current = _memory.Read<ulong>((L1 << 12) + 16);
        StoreIntoTable([0xF0, 0x48, 0x0F, 0xB1, 0x37], Slot(2), rsi: (Data << 12) | P | Rw, rax: current);
        Assert.Equal((Data << 12) | P | Rw, Entry(2));
        Assert.NotEqual(0UL, _cpu.Rflags & (1UL << 6));
        ulong now = _memory.Read<ulong>((L1 << 12) + 16);
        StoreIntoTable([0xF0, 0x48, 0x0F, 0xB1, 0x37], Slot(2), rsi: (Other << 12) | P, rax: 0x1234);
        Assert.Equal(now, _cpu.GetRegister(0));
        Assert.Equal(0UL, _cpu.Rflags & (1UL << 6));
        Assert.Equal((Data << 12) | P | Rw, Entry(2));

        // LOCK AND [rdi], rsi clears RW (ptep_set_wrprotect); LOCK OR [rdi], rsi sets it back.
        StoreIntoTable([0xF0, 0x48, 0x21, 0x37], Slot(2), rsi: ~Rw);
        Assert.Equal((Data << 12) | P, Entry(2));
        StoreIntoTable([0xF0, 0x48, 0x09, 0x37], Slot(2), rsi: Rw);
        Assert.Equal((Data << 12) | P | Rw, Entry(2));

        // LOCK BTR [rdi], rsi (bit 1 = RW) and LOCK BTS [rdi], rsi: CF is the bit as it was.
        StoreIntoTable([0xF0, 0x48, 0x0F, 0xB3, 0x37], Slot(2), rsi: 1);
        Assert.Equal((Data << 12) | P, Entry(2));
        Assert.NotEqual(0UL, _cpu.Rflags & 1);
        StoreIntoTable([0xF0, 0x48, 0x0F, 0xAB, 0x37], Slot(2), rsi: 1);
        Assert.Equal((Data << 12) | P | Rw, Entry(2));
        Assert.Equal(0UL, _cpu.Rflags & 1);
        Assert.Equal(8, _xen.Counters["pv-ptwr-emulated"]);      // every store but the compare that did not match

        // A refused entry: a writable mapping of the L1 itself. Nothing is written; the guest gets its #PF.
        StoreIntoTable([0x48, 0x89, 0x37], Slot(4), rsi: (L1 << 12) | P | Rw);
        Assert.Equal(Handler, _cpu.Rip);
        Assert.Equal(0UL, Entry(4));
        Assert.Null(_cpu.Crash);
        Assert.Equal(PvPageType.L1, tables.TypeInUse(L1));
    }

    /// <summary>Runs <paramref name="instruction"/> at <see cref="Code"/> as the #PF of a guest kernel write to <paramref name="address"/> (RDI).</summary>
    private void StoreIntoTable(byte[] instruction, ulong address, ulong rsi = 0, ulong rax = 0)
    {
        _memory.Write(Code, instruction);
        _cpu.Rip = Code;
        _cpu.SetRegister(4, Stack);
        _cpu.SetRegister(7, address);
        _cpu.SetRegister(6, rsi);
        _cpu.SetRegister(0, rax);
        _cpu.Cr2 = address;
        Assert.True(_pv.OnEvent(_cpu, new ParavirtualEvent(14, 3, ParavirtualEventKind.Exception, Code)));
    }

    private void WriteIretFrame(ulong rax, ulong rip, ulong cs, ulong rflags, ulong rsp, ulong ss)
    {
        ulong[] frame = [rax, 0, 0, 0, rip, cs, rflags, rsp, ss];
        for (int i = 0; i < frame.Length; i++)
        {
            _memory.Write(Stack + ((ulong)i * 8), frame[i]);
        }
    }

    /// <summary>A CPL-3 vCPU: virtual = physical, segment loads succeed for any non-null selector with RPL 3 (the architectural rule at CPL 3).</summary>
    private sealed class FakePvContext(GuestMemory memory) : IParavirtualCpuContext
    {
        private readonly ulong[] _registers = new ulong[16];
        private readonly ushort[] _selectors = [0, PvCpu.FlatKernelCs, PvCpu.FlatKernelSs, 0, 0, 0];

        public int VcpuId => 0;

        public bool LongMode => true;

        public int Cpl => 3;

        public ulong Rip { get; set; }

        public ulong Rflags { get; set; } = 0x202;

        public ulong Cr2 { get; set; }

        public ulong Cr4 { get; set; } = (1UL << 5) | (1UL << 9) | (1UL << 10);

        public bool TrySetCr4(ulong value)
        {
            Cr4 = value;
            return true;
        }

        public bool TaskSwitched { get; set; }

        public ulong FsBase { get; set; }

        public ulong GsBase { get; set; }

        public ulong KernelGsBase { get; set; }

        public string? Crash { get; private set; }

        public (ulong Base, ushort Limit) Gdt { get; private set; }

        /// <summary>Selectors whose load fails (a descriptor the processor refuses).</summary>
        public HashSet<ushort> Unloadable { get; } = [];

        public ulong GetRegister(int index) => _registers[index];

        public void SetRegister(int index, ulong value) => _registers[index] = value;

        public bool TryReadVirtual(ulong address, Span<byte> destination) =>
            memory.TryGetSpan(address, destination.Length, out Span<byte> span) && span.TryCopyTo(destination);

        public bool TryWriteVirtual(ulong address, ReadOnlySpan<byte> source) =>
            memory.TryGetSpan(address, source.Length, out Span<byte> span) && source.TryCopyTo(span);

        public void Halt()
        {
        }

        public ushort GetSelector(ParavirtualSegment segment) => _selectors[(int)segment];

        public bool TryLoadSegment(ParavirtualSegment segment, ushort selector)
        {
            if ((selector & 3) != 3 || (selector & 0xFFFC) == 0 || Unloadable.Contains(selector))
            {
                return false;
            }

            _selectors[(int)segment] = selector;
            return true;
        }

        public void SetPageTableRoot(ulong machineAddress)
        {
        }

        public void FlushTlb()
        {
        }

        public void FlushTlbPage(ulong linearAddress)
        {
        }

        public void SetGdt(ulong linearBase, ushort limit) => Gdt = (linearBase, limit);

        // Leaf 1: x2APIC; FPU, PSE, TSC, PGE. Leaf 0x80000001: NX, 1 GiB pages, long mode.
        public CpuidResult Cpuid(uint leaf, uint subleaf) => leaf switch
        {
            1 => new CpuidResult(0x800F12, 0, 1u << 21, (1u << 0) | (1u << 3) | (1u << 4) | (1u << 13)),
            0x8000_0001 => new CpuidResult(0, 0, 0, (1u << 20) | (1u << 26) | (1u << 29)),
            _ => new CpuidResult(1, 0x6874_7541, 0, 0),
        };

        public void CrashDomain(string reason) => Crash ??= reason;
    }
}
