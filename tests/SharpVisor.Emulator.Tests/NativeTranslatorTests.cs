using Iced.Intel;
using SharpVisor.Emulator.Translator;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>The native back end (<see cref="ExecutionTier.Native"/>): the interpreter's state for every inline form, precise TLB misses, SMC, a full code buffer.</summary>
public sealed class NativeTranslatorTests
{
    private const ulong Data = 0x40000;
    private const ulong Results = 0x20_0000;

    /// <summary>Native tests compile every block at its first run (the threshold is process-wide; only the native tier reads it).</summary>
    internal static void CompileAtFirstRun(ExecutionTier tier)
    {
        if (tier == ExecutionTier.Native)
        {
            TranslatorSettings.NativeThreshold = 1;
        }
    }

    /// <summary>
    /// Each inline form at each size it has (MOV, LEA, the ALU forms with registers, immediates and
    /// memory, INC/DEC, PUSH/POP, shifts and IMUL with dead flags, JMP/Jcc) on edge values, with RFLAGS read by PUSHFQ (a handler:
    /// the flags computed from the lazy state native code stored) after every flag writer and ADC
    /// reading CF: the interpreter's registers, flags and memory.
    /// </summary>
    [Fact]
    public void EveryInlineFormGivesTheInterpretersState()
    {
        ulong[] values = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF_FFFF, 0x8000_0000, 0x8000_0000_0000_0000, ulong.MaxValue, 0x1234_5678_9ABC_DEF0];
        void Program(Assembler a)
        {
            a.mov(rsi, Data);
            a.mov(rdi, Data + 0x800);
            foreach (ulong x in values)
            {
                foreach (ulong y in values)
                {
                    a.mov(rax, x);
                    a.mov(rbx, y);
                    a.mov(__qword_ptr[rsi], rbx);
                    a.add(al, bl); Flags(a);
                    a.sub(ax, bx); Flags(a);
                    a.cmp(eax, ebx); Flags(a);
                    a.xor(rax, rbx); Flags(a);
                    a.and(bl, 0x81); Flags(a);
                    a.or(bx, 0x7F01); Flags(a);
                    a.test(eax, 0x40000001); Flags(a);
                    a.sub(rax, -5); Flags(a);
                    a.inc(eax); Flags(a);
                    a.dec(rbx); Flags(a);
                    a.add(rax, __qword_ptr[rsi]); Flags(a);
                    a.sub(ecx, __dword_ptr[rsi + 4]); Flags(a);
                    a.cmp(__qword_ptr[rsi], rax); Flags(a);
                    a.test(__dword_ptr[rsi], ebx); Flags(a);
                    a.cmp(__dword_ptr[rsi], 0x7FFF_FFFF); Flags(a);
                    a.adc(rdx, rax);
                    a.mov(__dword_ptr[rsi + 8], eax);
                    a.mov(__qword_ptr[rsi + 16], 0x1234_5678);
                    a.mov(r8d, __dword_ptr[rsi + 8]);
                    a.mov(r9, __qword_ptr[rsi + 16]);
                    a.lea(r10, __[rax + rbx * 8 + 0x1234]);
                    a.lea(r11d, __[eax + ebx * 2 - 7]);
                    a.mov(r12d, ebx);
                    a.mov(r13, rax);
                    a.mov(r14d, 0xFFFF_FFFF);
                    a.shl(r12d, 3);                 // shifts and IMUL with dead flags: the result only
                    a.imul(r13, r12, 77);
                    a.sar(r13, 2);
                    a.ror(r12d, 5);
                    a.imul(r12d, r13d);
                    a.rol(r13, 0);                  // a zero count: nothing written, flags kept
                    a.shr(r12d, 0);                 // a zero count still zero-extends a 32-bit register
                    a.xor(r12, r13);
                    a.shl(rax, 1); Flags(a);        // flags read: the handler's rules
                    a.imul(r13d, r12d, -3); Flags(a);
                    a.push(r13);
                    a.push(0x55);
                    a.pop(r15);
                    a.pop(rcx);
                    a.add(rdx, r10);
                    a.xor(rdx, r11);
                    a.add(rdx, r15);
                    a.mov(__qword_ptr[rdi], rdx);
                    a.add(rdi, 8);
                }
            }

            a.hlt();
        }

        // PUSHFQ (a handler) reads the flags from the lazy state native code wrote; ADC reads CF.
        static void Flags(Assembler a)
        {
            a.pushfq();
            a.pop(rbp);
            a.adc(rdx, rbp);
            a.rol(rdx, 5);
        }

        AssertNativeMatchesInterpreter(Program, minimumInline: 3000);
    }

    /// <summary>
    /// The CIL tier's forms this back end does not emit (SBB, NEG, NOT, BSWAP, shifts by CL,
    /// rotates with live flags, DIV, ADD m, r and INC m) between inline forms: their handlers run, with the
    /// interpreter's registers, flags and memory, and no block fails to compile.
    /// </summary>
    [Fact]
    public void FormsOnlyTheCilTierEmitsRunTheirHandlers()
    {
        ulong[] values = [0, 1, 0x80, 0xFFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue, 0x1234_5678_9ABC_DEF0];
        void Program(Assembler a)
        {
            a.mov(rdi, Results);
            foreach (ulong x in values)
            {
                foreach (ulong y in values)
                {
                    a.mov(rax, x);
                    a.mov(rbx, y);
                    a.cmp(rax, rbx);
                    a.sbb(rdx, rdx);
                    a.sbb(ebx, 3);
                    a.add(rdx, rbx);
                    a.neg(eax);
                    a.pushfq();
                    a.pop(rbp);
                    a.add(rdx, rbp);
                    a.not(rbx);
                    a.bswap(rdx);
                    a.mov(ecx, eax);
                    a.shl(rbx, cl);
                    a.ror(edx, 7);
                    a.pushfq();
                    a.pop(rbp);
                    a.add(rdx, rbp);
                    a.mov(rcx, rbx);
                    a.or(rcx, 1);
                    a.mov(r8, rdx);
                    a.xor(edx, edx);
                    a.div(rcx);
                    a.add(rax, r8);
                    a.mov(__qword_ptr[rdi], rax);
                    a.mov(__qword_ptr[rdi + 8], rdx);
                    a.add(__qword_ptr[rdi], rbx);
                    a.inc(__dword_ptr[rdi + 8]);
                    a.add(rdi, 16);
                }
            }

            a.hlt();
        }

        AssertNativeMatchesInterpreter(Program, minimumInline: 500);
    }

    /// <summary>
    /// Every condition after each producer, with the Jcc in the producer's block: native code
    /// recomputes the flags on the host from the lazy operands; an INC/DEC after a known producer
    /// keeps the carry it computed. Also across a handler (unknown producer: the Jcc's handler).
    /// </summary>
    [Fact]
    public void NativeBranchesTakeTheInterpretersBranches()
    {
        ulong[] values = [0, 1, 0x80, 0xFFFF, 0xFFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue];
        void Program(Assembler a)
        {
            a.mov(rdi, Results);
            int n = 0;
            foreach (ulong x in values)
            {
                foreach (ulong y in values)
                {
                    for (int producer = 0; producer < 6; producer++)
                    {
                        for (int cc = 0; cc < 16; cc++)
                        {
                            Label taken = a.CreateLabel();
                            Label next = a.CreateLabel();
                            a.mov(rax, x);
                            a.mov(rbx, y);
                            switch (producer)
                            {
                                case 0: a.cmp(rax, rbx); break;
                                case 1: a.add(eax, ebx); break;
                                case 2: a.sub(bx, ax); break;
                                case 3: a.test(al, bl); break;
                                case 4: a.cmp(eax, ebx); a.inc(ebx); break;
                                default: a.add(rax, rbx); a.dec(al); break;
                            }

                            if (n % 4 == 3)
                            {
                                a.bswap(rcx); // a handler between: the Jcc's condition comes from the handler
                            }

                            TranslatorTests.EmitJcc(a, cc, taken);
                            a.mov(edx, 1);
                            a.jmp(next);
                            a.Label(ref taken);
                            a.mov(edx, 2);
                            a.Label(ref next);
                            a.mov(__byte_ptr[rdi], dl);
                            a.add(rdi, 1);
                            n++;
                        }
                    }
                }
            }

            a.hlt();
        }

        byte[] nativeData = AssertNativeMatchesInterpreter(Program, minimumInline: 10_000);
        Assert.Contains((byte)1, nativeData);
        Assert.Contains((byte)2, nativeData);
    }

    /// <summary>
    /// A load from a page the TLB has not seen misses in native code: the handler runs the whole
    /// instruction (the page walk, then a #PF for an unmapped page) and a fault leaves RIP, the
    /// registers before it and the retired count as the interpreter leaves them.
    /// </summary>
    [Fact]
    public void TlbMissesAndFaultsAreThoseOfTheInterpreter()
    {
        static (CpuRunResult, string, long) RunOnce(ExecutionTier tier)
        {
            CompileAtFirstRun(tier);
            using var t = new TestCpu(8 << 20);
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            t.Load(64, a =>
            {
                a.mov(rsi, 0x60_0000);                 // a page not yet in the TLB: the first load misses
                a.mov(rax, __qword_ptr[rsi]);
                a.add(rax, 3);
                a.mov(__qword_ptr[rsi + 0x1000], rax);  // another page: a write miss
                a.mov(rdx, 0x10_0000_0000);             // above the identity map: #PF
                a.add(rbx, __qword_ptr[rdx]);
                a.mov(ecx, 5);
                a.hlt();
            });
            t.Memory.Write<ulong>(0x60_0000, 39);
            CpuRunResult result = t.Cpu.Run(1000);
            return (result, t.Cpu.GetState().Format() + t.Memory.Read<ulong>(0x60_1000), t.Cpu.InstructionsExecuted);
        }

        (CpuRunResult ri, string si, long ni) = RunOnce(ExecutionTier.Interpreter);
        (CpuRunResult rn, string sn, long nn) = RunOnce(ExecutionTier.Native);
        Assert.Equal(CpuStopReason.Exception, rn.Reason);
        Assert.Equal(ri.Exception!.Vector, rn.Exception!.Vector);
        Assert.Equal(0x10_0000_0000UL, rn.Exception.FaultAddress);
        Assert.Equal(si, sn);
        Assert.Equal(ni, nn);
        Assert.Equal(5L, nn);
    }

    /// <summary>A store into a block that already runs as native code: the block is decoded again and its new instructions run (native code of the old block is never run again).</summary>
    [Fact]
    public void SelfModifyingCodeDropsNativeCode()
    {
        static string RunOnce(ExecutionTier tier, out long inline, out ulong sum)
        {
            CompileAtFirstRun(tier);
            using var t = new TestCpu();
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            Label patched = default;
            t.Load(64, a =>
            {
                patched = a.CreateLabel();
                Label done = a.CreateLabel();
                a.mov(ecx, 200);
                a.Label(ref patched);
                a.mov(eax, 1);                       // B8 imm32: the immediate is rewritten below
                a.add(rbx, rax);
                a.cmp(ecx, 100);
                a.jne(done);
                a.lea(r8, __[patched]);
                a.mov(__dword_ptr[r8 + 1], 1000);
                a.Label(ref done);
                a.dec(ecx);
                a.jnz(patched);
                a.hlt();
            });
            t.RunToHalt();
            inline = t.Cpu.NativeInstructions;
            sum = t.Cpu.GetRegister(3);
            return t.Cpu.GetState().Format();
        }

        string interpreted = RunOnce(ExecutionTier.Interpreter, out _, out _);
        string native = RunOnce(ExecutionTier.Native, out long inline, out ulong sum);
        Assert.Equal(interpreted, native);
        Assert.Equal(101UL + (99 * 1000), sum);
        Assert.True(inline > 200, $"{inline} instructions in native code");
    }

    /// <summary>A code buffer too small for the program's blocks starts over again and again: stale code is never run, the blocks heat up and are encoded again, and the results are the interpreter's.</summary>
    [Fact]
    public void AFullCodeBufferStartsOver()
    {
        CompileAtFirstRun(ExecutionTier.Native);
        long resets = X86Cpu.NativeStatistics.Resets;
        (string interpreted, byte[] interpretedData, _) = Run(ExecutionTier.Interpreter, LoadManyBlocks);
        (string native, byte[] nativeData, long inline) = Run(ExecutionTier.Native, LoadManyBlocks, codeCapacity: 4096);
        Assert.Equal(interpreted, native);
        Assert.Equal(interpretedData, nativeData);
        Assert.True(X86Cpu.NativeStatistics.Resets > resets);
        Assert.True(inline > 1000, $"{inline} instructions in native code");
    }

    /// <summary>
    /// An endless native self-loop comes back to managed code regularly: a garbage collection on
    /// another thread completes while it runs (a thread in native code without a GC transition
    /// holds every GC off) and a stop request ends the run.
    /// </summary>
    [Fact]
    public void NativeLoopsLetCollectionsAndStopRequestsIn()
    {
        CompileAtFirstRun(ExecutionTier.Native);
        using var t = new TestCpu();
        t.Cpu.Tier = ExecutionTier.Native;
        t.EnterLongMode();
        t.Load(64, a =>
        {
            Label loop = a.CreateLabel();
            a.Label(ref loop);
            a.add(rax, 3);
            a.xor(rbx, rax);
            a.jmp(loop);
        });
        CpuRunResult? result = null;
        var runner = new Thread(() => result = t.Cpu.Run()) { IsBackground = true };
        runner.Start();
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (t.Cpu.NativeInstructions < 10_000_000 && DateTime.UtcNow < deadline && runner.IsAlive)
        {
            Thread.Yield();
        }

        Assert.True(t.Cpu.NativeInstructions >= 10_000_000, $"{t.Cpu.NativeInstructions} instructions in native code within 120 s");
        int collections = GC.CollectionCount(2);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        Assert.True(GC.CollectionCount(2) > collections);
        Assert.True(runner.IsAlive, "the endless loop ended by itself");
        t.Cpu.RequestStop();
        Assert.True(runner.Join(TimeSpan.FromSeconds(120)), "the run did not stop");
        Assert.Equal(CpuStopReason.StopRequested, result!.Value.Reason);
    }

    private static void LoadManyBlocks(Assembler a)
    {
        Label outer = a.CreateLabel();
        a.mov(rsi, Data);
        a.mov(ecx, 20);
        a.Label(ref outer);
        for (int b = 0; b < 60; b++)
        {
            Label next = a.CreateLabel();
            a.add(rax, b);
            a.xor(rbx, rax);
            a.mov(__qword_ptr[rsi + (b * 8)], rbx);
            a.add(rdx, __qword_ptr[rsi + (b * 8)]);
            a.jmp(next);
            a.Label(ref next);
        }

        a.dec(ecx);
        a.jnz(outer);
        a.hlt();
    }

    /// <summary>
    /// Runs <paramref name="program"/> interpreted and under the native back end: no block fails to
    /// compile, state and memory agree, and more than <paramref name="minimumInline"/> instructions ran
    /// in native code itself. Returns the native run's memory.
    /// </summary>
    private static byte[] AssertNativeMatchesInterpreter(Action<Assembler> program, long minimumInline)
    {
        (string interpreted, byte[] interpretedData, _) = Run(ExecutionTier.Interpreter, program);
        (string native, byte[] nativeData, long inline) = Run(ExecutionTier.Native, program);
        Assert.Equal(0, X86Cpu.NativeStatistics.Failed);
        Assert.Equal(interpreted, native);
        Assert.Equal(interpretedData, nativeData);
        Assert.True(inline > minimumInline, $"{inline} instructions in native code");
        return nativeData;
    }

    private static (string State, byte[] Data, long Inline) Run(ExecutionTier tier, Action<Assembler> program, long codeCapacity = 0)
    {
        CompileAtFirstRun(tier);
        using var t = new TestCpu(4 << 20);
        t.Cpu.Tier = tier;
        if (codeCapacity != 0)
        {
            t.Cpu.NativeCodeCapacity = codeCapacity;
        }

        t.EnterLongMode();
        t.Load(64, program);
        t.RunToHalt(100_000_000);
        var data = new byte[0x10000];
        t.Memory.Read(Data, data);
        var results = new byte[0x10000];
        t.Memory.Read(Results, results);
        data = [.. data, .. results];
        return (t.Cpu.GetState().Format(), data, t.Cpu.NativeInstructions);
    }
}
