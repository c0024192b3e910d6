using Iced.Intel;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Tests.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Smp;

/// <summary>
/// Two CPUs on two threads over one guest memory: what one stores to code or page tables the
/// other has cached (decoded blocks, shadow tables) reaches the other, in both MMU modes.
/// </summary>
public class CrossVcpuCoherenceTests
{
    // The waiting CPU spins while the other is descheduled (2 cores, many processes): how many
    // instructions it spins depends on the tier's speed and the scheduler, not on coherence. The
    // budget only stops a runaway; RunAll's 120 s bound and the assertions on the outcome stay.
    private const long SpinBudget = 2_000_000_000;

    private const ulong CodeA = 0x1000;
    private const ulong CodeB = 0x3000;
    private const ulong Patchable = 0x10000;  // mov eax, imm32; ret
    private const ulong Data = 0x20000;
    private const ulong Result = Data;
    private const ulong Ack = Data + 0x40;
    private const ulong Echo = Data + 0x80;
    private const ulong Failure = Data + 0xC0;

    // Page-table tests: the page CPU A reads through, and the frames B maps there.
    private const ulong Window = 0x20_0000;
    private const ulong Frame1 = 0x50_0000; // above the identity-mapped 4 MiB: reachable only through Window
    private const ulong Frame2 = 0x60_0000;

    public static TheoryData<MmuMode> Modes => MmuHarness.Modes;

    [Theory]
    [MemberData(nameof(Modes))]
    public void CodePatchedByOneVcpuIsExecutedByTheOther(MmuMode mode)
    {
        using var m = new SmpMachine(mode);
        m.Load(Patchable, a =>
        {
            a.mov(eax, 1);
            a.ret();
        });
        m.Start(0, CodeA, a =>
        {
            Label top = a.CreateLabel();
            a.Label(ref top);
            a.call(Patchable);
            a.mov(__dword_ptr[Result], eax);
            a.cmp(eax, 2);
            a.jne(top);
            a.hlt();
        });
        m.Start(1, CodeB, a =>
        {
            Label wait = a.CreateLabel();
            a.Label(ref wait);
            a.cmp(__dword_ptr[Result], 1); // A has run the old code
            a.jne(wait);
            a.mov(__dword_ptr[Patchable + 1], 2); // the immediate of mov eax, imm32
            a.hlt();
        });

        m.AssertHalted(m.RunAll());
        Assert.Equal(2u, m.Memory.Read<uint>(Result));
    }

    /// <summary>
    /// B patches the code many times, each time publishing the new value after the patch; A reads
    /// the published value, then runs the code: it must never run code older than what it read.
    /// </summary>
    [Theory]
    [MemberData(nameof(Modes))]
    public void RepeatedPatchesAreNeverSeenOutOfOrder(MmuMode mode)
    {
        const int patches = 2000;
        using var m = new SmpMachine(mode);
        m.Load(Patchable, a =>
        {
            a.mov(eax, 0);
            a.ret();
        });
        m.Start(0, CodeA, a =>
        {
            Label top = a.CreateLabel();
            Label fail = a.CreateLabel();
            a.Label(ref top);
            a.mov(ebx, __dword_ptr[Ack]);
            a.call(Patchable);
            a.cmp(eax, ebx);
            a.jb(fail);                       // ran code older than the published patch
            a.mov(__dword_ptr[Echo], ebx);
            a.cmp(ebx, patches);
            a.jne(top);
            a.hlt();
            a.Label(ref fail);
            a.mov(__dword_ptr[Failure], ebx);
            a.mov(__dword_ptr[Failure + 4], eax);
            a.hlt();
        });
        m.Start(1, CodeB, a =>
        {
            Label loop = a.CreateLabel();
            Label wait = a.CreateLabel();
            Label next = a.CreateLabel();
            a.mov(ecx, 1);
            a.Label(ref loop);
            a.mov(__dword_ptr[Patchable + 1], ecx);
            a.mov(__dword_ptr[Ack], ecx);
            a.test(ecx, 7);
            a.jnz(next);
            a.Label(ref wait);                // every 8 patches, let A catch up to within 8
            a.mov(edx, __dword_ptr[Echo]);
            a.add(edx, 8);
            a.cmp(edx, ecx);
            a.jb(wait);
            a.Label(ref next);
            a.inc(ecx);
            a.cmp(ecx, patches);
            a.jbe(loop);
            a.hlt();
        });

        m.AssertHalted(m.RunAll(limit: SpinBudget));
        Assert.Equal(0UL, m.Memory.Read<ulong>(Failure));
        Assert.Equal((uint)patches, m.Memory.Read<uint>(Echo));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ANotPresentEntryMadePresentByOneVcpuIsUsedByTheOther(MmuMode mode)
    {
        using var m = new SmpMachine(mode);
        ulong pte = m.Tables.EntryAddressOf(Window, 1);
        m.Tables.Write(pte, 0); // not present; its page table is shadowed as soon as A runs
        m.Memory.Write(Frame1, 0x1111_1111u);
        m.Start(0, CodeA, a =>
        {
            Label wait = a.CreateLabel();
            a.mov(__dword_ptr[Result], 1);    // "A is running" (its page tables are in use)
            a.Label(ref wait);
            a.cmp(__dword_ptr[Ack], 1);
            a.jne(wait);
            a.mov(eax, __dword_ptr[Window]);  // no flush: a not-present entry is never cached
            a.mov(__dword_ptr[Echo], eax);
            a.hlt();
        });
        m.Start(1, CodeB, a =>
        {
            Label wait = a.CreateLabel();
            a.Label(ref wait);
            a.cmp(__dword_ptr[Result], 1);
            a.jne(wait);
            a.mov(rax, Frame1 | PageTables.P | PageTables.RW);
            a.mov(__qword_ptr[pte], rax);
            a.mov(__dword_ptr[Ack], 1);
            a.hlt();
        });

        m.AssertHalted(m.RunAll());
        Assert.Equal(0x1111_1111u, m.Memory.Read<uint>(Echo));
    }

    /// <summary>
    /// B remaps A's window to another frame (a plain store, then an atomic exchange) and A, told so,
    /// reloads CR3: the shadow MMU keeps its shadows across CR3 loads, so only B's report can
    /// make A's shadow drop the old entry.
    /// </summary>
    [Theory]
    [MemberData(nameof(Modes))]
    public void AnEntryRemappedByOneVcpuIsSeenByTheOtherAfterItsTlbFlush(MmuMode mode)
    {
        using var m = new SmpMachine(mode);
        ulong pte = m.Tables.EntryAddressOf(Window, 1);
        m.Tables.Write(pte, Frame1 | PageTables.P | PageTables.RW);
        m.Memory.Write(Frame1, 0x1111_1111u);
        m.Memory.Write(Frame2, 0x2222_2222u);
        m.Start(0, CodeA, a =>
        {
            Label wait1 = a.CreateLabel();
            Label wait2 = a.CreateLabel();
            a.mov(eax, __dword_ptr[Window]);  // caches Frame1 (TLB, shadow)
            a.mov(__dword_ptr[Result], eax);
            a.Label(ref wait1);
            a.cmp(__dword_ptr[Ack], 1);
            a.jne(wait1);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(eax, __dword_ptr[Window]);
            a.mov(__dword_ptr[Echo], eax);
            a.Label(ref wait2);
            a.cmp(__dword_ptr[Ack], 2);
            a.jne(wait2);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(eax, __dword_ptr[Window]);
            a.mov(__dword_ptr[Echo + 4], eax);
            a.hlt();
        });
        m.Start(1, CodeB, a =>
        {
            Label wait1 = a.CreateLabel();
            Label wait2 = a.CreateLabel();
            a.Label(ref wait1);
            a.cmp(__dword_ptr[Result], 0x1111_1111);
            a.jne(wait1);
            a.mov(rax, Frame2 | PageTables.P | PageTables.RW);
            a.mov(__qword_ptr[pte], rax);
            a.mov(__dword_ptr[Ack], 1);
            a.Label(ref wait2);
            a.cmp(__dword_ptr[Echo], 0x2222_2222);
            a.jne(wait2);
            a.mov(rax, Frame1 | PageTables.P | PageTables.RW);
            a.xchg(__qword_ptr[pte], rax);    // Linux's ptep_get_and_clear style: a LOCKed RMW on the table
            a.mov(__dword_ptr[Ack], 2);
            a.hlt();
        });

        m.AssertHalted(m.RunAll());
        Assert.Equal(0x2222_2222u, m.Memory.Read<uint>(Echo));
        Assert.Equal(0x1111_1111u, m.Memory.Read<uint>(Echo + 4));
    }

    /// <summary>B remaps A's window back and forth many times in lockstep with A, which flushes with a CR3 load each time.</summary>
    [Theory]
    [MemberData(nameof(Modes))]
    public void RepeatedRemapsAreAllSeen(MmuMode mode)
    {
        const int remaps = 500;
        using var m = new SmpMachine(mode);
        ulong pte = m.Tables.EntryAddressOf(Window, 1);
        m.Tables.Write(pte, Frame2 | PageTables.P | PageTables.RW);
        m.Memory.Write(Frame1, 1u);
        m.Memory.Write(Frame2, 2u);
        m.Start(0, CodeA, a =>
        {
            Label wait = a.CreateLabel();
            Label fail = a.CreateLabel();
            a.xor(esi, esi);                  // the last generation seen
            a.Label(ref wait);
            a.mov(ebx, __dword_ptr[Ack]);
            a.cmp(ebx, esi);
            a.je(wait);
            a.mov(esi, ebx);
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(eax, __dword_ptr[Window]);  // generation n maps Frame1 (1) when n is odd, Frame2 (2) when even
            a.mov(edx, ebx);
            a.and(edx, 1);
            a.xor(edx, 1);
            a.inc(edx);
            a.cmp(eax, edx);
            a.jne(fail);
            a.mov(__dword_ptr[Echo], ebx);
            a.cmp(ebx, remaps);
            a.jne(wait);
            a.hlt();
            a.Label(ref fail);
            a.mov(__dword_ptr[Failure], ebx);
            a.mov(__dword_ptr[Failure + 4], eax);
            a.hlt();
        });
        m.Start(1, CodeB, a =>
        {
            Label loop = a.CreateLabel();
            Label wait = a.CreateLabel();
            Label even = a.CreateLabel();
            a.mov(ecx, 1);
            a.Label(ref loop);
            a.mov(rax, Frame2 | PageTables.P | PageTables.RW);
            a.test(ecx, 1);
            a.jz(even);
            a.mov(rax, Frame1 | PageTables.P | PageTables.RW);
            a.Label(ref even);
            a.mov(__qword_ptr[pte], rax);
            a.mov(__dword_ptr[Ack], ecx);
            a.Label(ref wait);
            a.cmp(__dword_ptr[Echo], ecx);
            a.jne(wait);
            a.inc(ecx);
            a.cmp(ecx, remaps);
            a.jbe(loop);
            a.hlt();
        });

        m.AssertHalted(m.RunAll(limit: SpinBudget));
        Assert.Equal(0UL, m.Memory.Read<ulong>(Failure));
        Assert.Equal((uint)remaps, m.Memory.Read<uint>(Echo));
    }
}
