using Iced.Intel;
using SharpVisor.Emulator.Translator;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>Tier 1 (the CIL translator): same results as the interpreter, precise faults, the handler catalog, background compilation.</summary>
public sealed unsafe class TranslatorTests
{
    private const ulong Data = 0x40000;

    [Fact]
    public void CatalogFindsTheBindersHandlers()
    {
        nint movRR = (nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRR<Size64>;
        Assert.Equal(InlineKind.MovRR, HandlerCatalog.FormOf(movRR).Kind);
        Assert.Equal(InlineKind.AluRR, HandlerCatalog.FormOf(AluHandlers.Table<SubOp>()[(AluHandlers.FormRR * 4) + 3]).Kind);

        Assert.Equal(InlineKind.None, HandlerCatalog.FormOf(AluHandlers.Table<AdcOp>()[(AluHandlers.FormMR * 4) + 2]).Kind);
        Assert.Equal(typeof(CondNe), HandlerCatalog.JccCondition(BranchHandlers.JccTable[5]));
        Assert.Null(HandlerCatalog.JccCondition((nint)(delegate*<X86Cpu, ref Op, void>)&BranchHandlers.JmpRel));
    }

    /// <summary>A loop over the inline forms and handler calls (ADC, SHL, IMUL, CALL/RET, Jcc) gives the interpreter's state and memory.</summary>
    [Theory]
    [InlineData(ExecutionTier.Always)]
    [InlineData(ExecutionTier.Native)]
    public void TranslatedLoopEndsInTheInterpretersState(ExecutionTier tier)
    {
        NativeTranslatorTests.CompileAtFirstRun(tier);
        (VcpuStateSnapshot interpreted, byte[] interpretedData) = RunMix(ExecutionTier.Interpreter, out long _);
        (VcpuStateSnapshot translated, byte[] translatedData) = RunMix(tier, out long tier1);
        Assert.Equal(interpreted, translated);
        Assert.Equal(interpretedData, translatedData);
        Assert.True(tier1 > 10_000, $"{tier1} instructions in tier 1");
    }

    /// <summary>
    /// Self-loops run inside the translated method: stopped by the instruction budget at the same
    /// instruction, with the same state, as the interpreter, slice after slice.
    /// </summary>
    [Theory]
    [InlineData(ExecutionTier.Always)]
    [InlineData(ExecutionTier.Native)]
    public void TranslatedSelfLoopStopsWhereTheInterpreterDoes(ExecutionTier tier)
    {
        NativeTranslatorTests.CompileAtFirstRun(tier);
        using var interpreted = new TestCpu();
        using var translated = new TestCpu();
        interpreted.Cpu.Tier = ExecutionTier.Interpreter;
        translated.Cpu.Tier = tier;
        foreach (TestCpu t in new[] { interpreted, translated })
        {
            t.EnterLongMode();
            t.Load(64, a =>
            {
                Label tight = a.CreateLabel();
                Label mixed = a.CreateLabel();
                a.mov(ecx, 3000);
                a.Label(ref tight);
                a.add(rax, rcx);
                a.xor(rbx, rax);
                a.dec(ecx);
                a.jnz(tight);
                a.mov(rsi, Data);
                a.mov(ecx, 2000);
                a.Label(ref mixed);
                a.mov(rdx, rcx);
                a.and(edx, 31);
                a.imul(rax, rax, 13);                // a handler call inside the loop
                a.add(__qword_ptr[rsi + rdx * 8], rax);
                a.mov(r8, __qword_ptr[rsi + rdx * 8]);
                a.push(r8);
                a.pop(r9);
                a.sub(ecx, 1);
                a.jg(mixed);
                a.hlt();
            });
        }

        for (int slice = 0; ; slice++)
        {
            CpuRunResult a = interpreted.Cpu.Run(777);
            CpuRunResult b = translated.Cpu.Run(777);
            Assert.Equal(a.Reason, b.Reason);
            Assert.Equal(interpreted.Cpu.InstructionsExecuted, translated.Cpu.InstructionsExecuted);
            Assert.Equal(interpreted.Cpu.GetState().Format(), translated.Cpu.GetState().Format());
            if (a.Reason == CpuStopReason.Halted)
            {
                break;
            }

            Assert.True(slice < 1000, "the program did not halt");
        }

        var left = new byte[256];
        var right = new byte[256];
        interpreted.Memory.Read(Data, left);
        translated.Memory.Read(Data, right);
        Assert.Equal(left, right);
        Assert.True(translated.Cpu.TranslatedInstructions > 20_000, $"{translated.Cpu.TranslatedInstructions} instructions in tier 1");
    }

    /// <summary>
    /// Every condition code after each inline flag producer (CMP, SUB, TEST, AND, OR, XOR, ADD,
    /// INC, DEC at 8, 16, 32 and 64 bits; IMUL r,r and r,r,imm at 16, 32 and 64 bits; results folded
    /// with shifts and rotates by constants) on edge values, with the Jcc in the producer's block,
    /// after a MOV in between, and in the next block: tier 1's inline branches (conditions from
    /// locals or from the lazy state) take the interpreter's branches.
    /// </summary>
    [Theory]
    [InlineData(ExecutionTier.Always)]
    [InlineData(ExecutionTier.Native)]
    public void InlineBranchesTakeTheInterpretersBranches(ExecutionTier tier)
    {
        NativeTranslatorTests.CompileAtFirstRun(tier);
        const ulong results = 0x10_0000;
        (ulong A, ulong B)[] pairs = [(0, 0), (1, 2), (2, 1), (0x80, 0x7F), (0xFFFF_FFFF, 1), (0x8000_0000_0000_0000, 1), (ulong.MaxValue, ulong.MaxValue), (0x1_0000_0080, 0x80)];
        byte[] Run(ExecutionTier tier, out long translated)
        {
            using var t = new TestCpu(4 << 20);
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            int cases = 0;
            t.Load(64, a =>
            {
                a.mov(rsi, results);
                foreach ((ulong x, ulong y) in pairs)
                {
                    for (int op = 0; op < 11; op++)
                    {
                        foreach (int bits in new[] { 8, 16, 32, 64 })
                        {
                            for (int cc = 0; cc < 16; cc++)
                            {
                                Label taken = a.CreateLabel();
                                Label next = a.CreateLabel();
                                Label split = a.CreateLabel();
                                a.mov(rax, x);
                                a.mov(rbx, y);
                                EmitProducer(a, op, bits, (int)y);
                                switch (cases % 3)
                                {
                                    case 1:
                                        a.mov(rcx, rdx);
                                        break;
                                    case 2:
                                        a.jmp(split);
                                        a.Label(ref split);
                                        break;
                                }

                                // Not taken: the JMP after it is in the same block (it needs the block's RIP too).
                                EmitJcc(a, cc, taken);
                                a.mov(edx, 1);
                                a.jmp(next);
                                a.Label(ref taken);
                                a.mov(edx, 2);
                                a.Label(ref next);
                                a.mov(__byte_ptr[rsi + cases], dl);
                                // Shifts by constants whose flags nothing reads (inline in tier 1).
                                a.add(r15, rax);
                                a.rol(r15, 7);
                                a.mov(r14d, eax);
                                a.sar(r14d, 3);
                                a.ror(r14, 11);
                                a.shr(r13, 5);
                                a.shl(r13d, 2);
                                a.rol(r12, 9);
                                a.shl(r14d, 1);
                                a.sar(r12, 1);
                                a.xor(r15, r14);
                                a.add(r13, rax);
                                a.sub(r12, r15);
                                cases++;
                            }
                        }
                    }
                }

                a.hlt();
            });
            t.RunToHalt();
            translated = t.Cpu.TranslatedInstructions;
            var data = new byte[cases];
            t.Memory.Read(results, data);
            Assert.DoesNotContain((byte)0, data);

            // The outcomes, then the results of the producers folded together (R15).
            return [.. data, .. BitConverter.GetBytes(t.Cpu.GetRegister(12)), .. BitConverter.GetBytes(t.Cpu.GetRegister(13)), .. BitConverter.GetBytes(t.Cpu.GetRegister(15))];
        }

        byte[] interpreted = Run(ExecutionTier.Interpreter, out _);
        long failed = X86Cpu.TranslatorStatistics.Failed;
        byte[] compiled = Run(tier, out long tier1);
        Assert.Equal(failed, X86Cpu.TranslatorStatistics.Failed);
        Assert.Equal(interpreted, compiled);
        Assert.True(tier1 > interpreted.Length * 4, $"{tier1} instructions in tier 1");
        Assert.NotEqual(0UL, BitConverter.ToUInt64(compiled, compiled.Length - 8));
        Assert.Contains((byte)1, interpreted);
        Assert.Contains((byte)2, interpreted);
    }

    private static void EmitProducer(Assembler a, int op, int bits, int imm)
    {
        switch (bits)
        {
            case 8:
                switch (op)
                {
                    case 0: a.cmp(al, bl); break;
                    case 1: a.sub(al, bl); break;
                    case 2: a.test(al, bl); break;
                    case 3: a.and(al, (byte)imm); break;
                    case 4: a.or(al, bl); break;
                    case 5: a.xor(al, (byte)imm); break;
                    case 6: a.add(al, bl); break;
                    case 7: a.inc(al); break;
                    case 8: a.dec(al); break;
                    case 9: a.imul(ax, bx); break;
                    default: a.imul(ax, bx, (short)imm); break;
                }

                break;
            case 16:
                switch (op)
                {
                    case 0: a.cmp(ax, bx); break;
                    case 1: a.sub(ax, bx); break;
                    case 2: a.test(ax, bx); break;
                    case 3: a.and(ax, (short)imm); break;
                    case 4: a.or(ax, bx); break;
                    case 5: a.xor(ax, (short)imm); break;
                    case 6: a.add(ax, bx); break;
                    case 7: a.inc(ax); break;
                    case 8: a.dec(ax); break;
                    case 9: a.imul(ax, bx); break;
                    default: a.imul(ax, bx, (short)imm); break;
                }

                break;
            case 32:
                switch (op)
                {
                    case 0: a.cmp(eax, ebx); break;
                    case 1: a.sub(eax, ebx); break;
                    case 2: a.test(eax, ebx); break;
                    case 3: a.and(eax, imm); break;
                    case 4: a.or(eax, ebx); break;
                    case 5: a.xor(eax, imm); break;
                    case 6: a.add(eax, ebx); break;
                    case 7: a.inc(eax); break;
                    case 8: a.dec(eax); break;
                    case 9: a.imul(eax, ebx); break;
                    default: a.imul(eax, ebx, imm); break;
                }

                break;
            default:
                switch (op)
                {
                    case 0: a.cmp(rax, rbx); break;
                    case 1: a.sub(rax, rbx); break;
                    case 2: a.test(rax, rbx); break;
                    case 3: a.and(rax, imm); break;
                    case 4: a.or(rax, rbx); break;
                    case 5: a.xor(rax, imm); break;
                    case 6: a.add(rax, rbx); break;
                    case 7: a.inc(rax); break;
                    case 8: a.dec(rax); break;
                    case 9: a.imul(rax, rbx); break;
                    default: a.imul(rax, rbx, imm); break;
                }

                break;
        }
    }

    /// <summary>The Jcc with condition code <paramref name="cc"/> (0 = JO ... 15 = JG); NativeTranslatorTests uses it too.</summary>
    internal static void EmitJcc(Assembler a, int cc, Label target)
    {
        switch (cc)
        {
            case 0: a.jo(target); break;
            case 1: a.jno(target); break;
            case 2: a.jb(target); break;
            case 3: a.jae(target); break;
            case 4: a.je(target); break;
            case 5: a.jne(target); break;
            case 6: a.jbe(target); break;
            case 7: a.ja(target); break;
            case 8: a.js(target); break;
            case 9: a.jns(target); break;
            case 10: a.jp(target); break;
            case 11: a.jnp(target); break;
            case 12: a.jl(target); break;
            case 13: a.jge(target); break;
            case 14: a.jle(target); break;
            default: a.jg(target); break;
        }
    }

    /// <summary>
    /// A loop within one page heats its blocks <see cref="TranslatorSettings.LoopHeat"/> times
    /// faster than straight-line code (a boot's inflate loop runs about a second and was half
    /// interpreted): 100 iterations of a three-block loop queue its blocks for tier 1 at a
    /// threshold of 1000 with a loop heat of 16, and leave them with the interpreter at 1.
    /// </summary>
    [Theory]
    [InlineData(16, true)]
    [InlineData(1, false)]
    public void LoopBlocksReachTheThresholdSooner(int loopHeat, bool queued)
    {
        int threshold = TranslatorSettings.HotThreshold;
        int heat = TranslatorSettings.LoopHeat;
        TranslatorSettings.HotThreshold = 1000;
        TranslatorSettings.LoopHeat = loopHeat;
        try
        {
            using var t = new TestCpu();
            t.Cpu.Tier = ExecutionTier.Auto;
            t.EnterLongMode();
            t.Load(64, a =>
            {
                Label top = a.CreateLabel();
                Label even = a.CreateLabel();
                a.mov(ecx, 100_000);
                a.Label(ref top);
                a.add(rax, rcx);
                a.test(ecx, 1);
                a.jz(even);
                a.xor(rbx, rax);
                a.Label(ref even);
                a.dec(ecx);
                a.jnz(top);
                a.hlt();
            });

            // About 100 iterations (6.5 instructions each), stopped inside the loop.
            Assert.Equal(CpuStopReason.InstructionLimit, t.Cpu.Run(651).Reason);
            Block block = t.Cpu._block!;
            Assert.True(block.Linear > t.Cpu.GetState().Rip - 64, "the run stopped outside the loop");
            Assert.Equal(queued, block.TranslationQueued || block.Translated is not null);
            if (!queued)
            {
                Assert.InRange(block.Heat, 50, 200);
            }
        }
        finally
        {
            TranslatorSettings.HotThreshold = threshold;
            TranslatorSettings.LoopHeat = heat;
        }
    }

    /// <summary>
    /// Regions (several blocks of one page in one method): a loop of data-dependent branches
    /// between blocks (light forward and back edges), a shift whose flags a later block reads,
    /// CALL/RET into and out of a function in the page (edges after a handler), stack and memory
    /// traffic. The blocks and then their regions are compiled in a first run; a second run from the start, in budget
    /// slices of 777 instructions, stops where the interpreter stops with the same state every
    /// time, and ends with the same memory.
    /// </summary>
    [Fact]
    public void RegionsStopWhereTheInterpreterDoes()
    {
        int threshold = TranslatorSettings.HotThreshold;
        int regionThreshold = TranslatorSettings.RegionThreshold;
        TranslatorSettings.HotThreshold = 4;
        TranslatorSettings.RegionThreshold = 16;
        try
        {
            using var interpreted = new TestCpu();
            using var translated = new TestCpu();
            interpreted.Cpu.Tier = ExecutionTier.Interpreter;
            translated.Cpu.Tier = ExecutionTier.Auto;
            foreach (TestCpu t in new[] { interpreted, translated })
            {
                t.EnterLongMode();
                t.Load(64, EmitRegionProgram);
            }

            // First run: the blocks heat up, link and are compiled (with their regions) in the background.
            long membersBefore = TranslationCache.RegionMembers;
            var deadline = DateTime.UtcNow.AddSeconds(120);
            do
            {
                translated.EnterLongMode();
                translated.Memory.Write(Data, new byte[512]);
                translated.RunToHalt();
            }
            while (TranslationCache.RegionMembers == membersBefore && DateTime.UtcNow < deadline);

            Assert.True(TranslationCache.RegionMembers > membersBefore, "no region was compiled within 120 s");
            translated.EnterLongMode();
            translated.Memory.Write(Data, new byte[512]);
            long tier1Before = translated.Cpu.TranslatedInstructions;
            long executedBefore = translated.Cpu.InstructionsExecuted;
            for (int slice = 0; ; slice++)
            {
                CpuRunResult a = interpreted.Cpu.Run(777);
                CpuRunResult b = translated.Cpu.Run(777);
                Assert.Equal(a.Reason, b.Reason);
                Assert.Equal(interpreted.Cpu.InstructionsExecuted, translated.Cpu.InstructionsExecuted - executedBefore);
                Assert.Equal(interpreted.Cpu.GetState().Format(), translated.Cpu.GetState().Format());
                if (a.Reason == CpuStopReason.Halted)
                {
                    break;
                }

                Assert.True(slice < 100_000, "the program did not halt");
            }

            var left = new byte[512];
            var right = new byte[512];
            interpreted.Memory.Read(Data, left);
            translated.Memory.Read(Data, right);
            Assert.Equal(left, right);
            Assert.True(translated.Cpu.TranslatedInstructions - tier1Before > 100_000, $"{translated.Cpu.TranslatedInstructions - tier1Before} instructions in tier 1");
        }
        finally
        {
            TranslatorSettings.HotThreshold = threshold;
            TranslatorSettings.RegionThreshold = regionThreshold;
        }
    }

    private static void EmitRegionProgram(Assembler a)
    {
        Label outer = a.CreateLabel();
        Label step = a.CreateLabel();
        Label odd = a.CreateLabel();
        Label next = a.CreateLabel();
        Label done = a.CreateLabel();
        Label carry = a.CreateLabel();
        Label function = a.CreateLabel();
        a.mov(rsi, Data);
        a.mov(ecx, 600);
        a.xor(r13d, r13d);
        a.xor(r12d, r12d);
        a.Label(ref outer);
        a.mov(rax, rcx);
        a.Label(ref step);
        a.cmp(rax, 1);
        a.je(done);
        a.test(al, 1);
        a.jnz(odd);
        a.shr(rax, 1);                       // flags live: the next block's ADC reads CF
        a.jmp(next);
        a.Label(ref odd);
        a.lea(rax, __qword_ptr[rax + rax * 2 + 1]);
        a.stc();
        a.Label(ref next);
        a.adc(r13, 0);
        a.inc(r13);
        a.jmp(step);
        a.Label(ref done);
        a.mov(rdi, rcx);
        a.call(function);
        a.add(r12, rax);
        a.jc(carry);
        a.mov(edx, ecx);
        a.and(edx, 63);
        a.add(__qword_ptr[rsi + rdx * 8], r12);
        a.Label(ref carry);
        a.push(r13);
        a.pop(r9);
        a.sub(ecx, 1);
        a.jg(outer);
        a.hlt();
        a.Label(ref function);
        a.push(rbp);
        a.mov(rbp, rsp);
        a.mov(rax, rdi);
        a.imul(rax, rdi);
        a.xor(rax, 0x55);
        a.shl(rax, 3);                       // flags live to the block's end (POP, RET)
        a.pop(rbp);
        a.ret();
    }

    public enum LoopShape
    {
        SelfLoop,
        Chain,
        Region,
    }

    /// <summary>
    /// A stop request or an interrupt window asked for by another thread while translated code
    /// loops without end (a self-loop inside one method, two blocks in the chain loop, the same
    /// two compiled as one region) ends the run at a block boundary: the run loop's attention
    /// word carries both, and no check between blocks may lose them.
    /// </summary>
    [Theory]
    [InlineData(LoopShape.SelfLoop, CpuStopReason.StopRequested, ExecutionTier.Always)]
    [InlineData(LoopShape.SelfLoop, CpuStopReason.InterruptWindow, ExecutionTier.Always)]
    [InlineData(LoopShape.Chain, CpuStopReason.StopRequested, ExecutionTier.Always)]
    [InlineData(LoopShape.Chain, CpuStopReason.InterruptWindow, ExecutionTier.Always)]
    [InlineData(LoopShape.Region, CpuStopReason.StopRequested, ExecutionTier.Always)]
    [InlineData(LoopShape.Region, CpuStopReason.InterruptWindow, ExecutionTier.Always)]
    [InlineData(LoopShape.SelfLoop, CpuStopReason.StopRequested, ExecutionTier.Interpreter)]   // the interpreter's in-place loop
    [InlineData(LoopShape.SelfLoop, CpuStopReason.InterruptWindow, ExecutionTier.Interpreter)]
    public void EventFromAnotherThreadEndsAnEndlessLoop(LoopShape shape, CpuStopReason reason, ExecutionTier tier)
    {
        int regionThreshold = TranslatorSettings.RegionThreshold;
        TranslatorSettings.RegionThreshold = shape == LoopShape.Region ? 16 : 1 << 30;
        try
        {
            using var t = new TestCpu();
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            t.Load(64, a =>
            {
                Label head = a.CreateLabel();
                Label second = a.CreateLabel();
                a.sti();                             // IF = 1: a window, once asked for, is open
                a.nop();
                a.mov(rsi, Data);
                a.xor(eax, eax);
                a.Label(ref head);
                a.inc(__qword_ptr[rsi]);             // the counter the test thread watches
                if (shape == LoopShape.SelfLoop)
                {
                    a.add(rax, 1);
                    a.jnz(head);                     // a block that branches to its own start
                }
                else
                {
                    a.jmp(second);
                    a.Label(ref second);
                    a.add(rax, 1);
                    a.jnz(head);                     // two blocks that branch to each other
                }

                a.hlt();
            });
            t.Memory.Write(Data, new byte[8]);
            long regionMembers = TranslationCache.RegionMembers;

            CpuRunResult? result = null;
            Exception? failure = null;
            var run = new Thread(() =>
            {
                try
                {
                    result = t.Cpu.Run();
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            run.Start();
            var counter = new byte[8];
            bool joined = false;
            try
            {
                var deadline = DateTime.UtcNow.AddSeconds(120);
                while (true)
                {
                    // The guest's own progress decides when to ask, never a fixed sleep.
                    t.Memory.Read(Data, counter);
                    bool regionReady = shape != LoopShape.Region || TranslationCache.RegionMembers > regionMembers;
                    if (BitConverter.ToUInt64(counter) > 100_000 && regionReady)
                    {
                        break;
                    }

                    Assert.True(run.IsAlive, $"the run ended on its own: {result} {failure}");
                    Assert.True(DateTime.UtcNow < deadline, "the guest did not count to 100,000 (and compile its region) within 120 s");
                    Thread.Yield();
                }

                if (reason == CpuStopReason.StopRequested)
                {
                    t.Cpu.RequestStop();
                }
                else
                {
                    t.Cpu.InterruptWindowRequested = true;
                }

                joined = run.Join(TimeSpan.FromSeconds(120));
                Assert.True(joined, $"{reason} was not taken within 120 s");
            }
            finally
            {
                if (!joined)
                {
                    // A failed check must not leave the CPU running over memory the test frees.
                    t.Cpu.RequestStop();
                    run.Join();
                }
            }

            Assert.Null(failure);
            Assert.Equal(reason, result!.Value.Reason);
            if (tier == ExecutionTier.Always)
            {
                Assert.True(t.Cpu.TranslatedInstructions > 100_000, $"{t.Cpu.TranslatedInstructions} instructions in tier 1");
            }


            // Stopped at a block boundary: after a whole iteration, or (two blocks) between its increment and its ADD.
            t.Memory.Read(Data, counter);
            ulong behind = BitConverter.ToUInt64(counter) - t.Cpu.GetRegister(0);
            Assert.True(behind == 0 || (behind == 1 && shape != LoopShape.SelfLoop), $"counter {BitConverter.ToUInt64(counter)}, RAX {t.Cpu.GetRegister(0)}");
        }
        finally
        {
            TranslatorSettings.RegionThreshold = regionThreshold;
        }
    }

    [Fact]
    public void HotBlocksAreCompiledInTheBackground()
    {
        using var t = new TestCpu();
        t.Cpu.Tier = ExecutionTier.Auto;
        t.EnterLongMode();
        LoadMix(t);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (t.Cpu.TranslatedInstructions == 0 && DateTime.UtcNow < deadline)
        {
            t.EnterLongMode();
            t.Cpu.SetRegister(1, 2000);
            t.RunToHalt();
        }

        Assert.True(t.Cpu.TranslatedInstructions > 0, "no block was compiled within 60 s");
        Assert.True(X86Cpu.TranslatorStatistics.Compiled > 0);

        // The JIT runs on the compiler thread, not at the translated code's first call on the vCPU.
        Assert.True(BlockTranslator.CanPrecompile);
    }

    /// <summary>A store that faults in the middle of a translated block: RIP at the store, earlier instructions retired with their registers and flags, nothing after it.</summary>
    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    [InlineData(ExecutionTier.Native)]
    public void FaultInTranslatedCodeIsPrecise(ExecutionTier tier)
    {
        NativeTranslatorTests.CompileAtFirstRun(tier);
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        Label store = default;
        byte[] code = t.Load(64, a =>
        {
            store = a.CreateLabel();
            a.mov(eax, 0xFFFFFFFF);
            a.add(eax, 1);                       // ZF, CF set: flags kept lazily in tier 1
            a.mov(rbx, 0x1234);
            a.push(rbx);
            a.mov(rdx, 0x10_0000_0000);           // above the 4 GiB identity map: #PF
            a.Label(ref store);
            a.mov(__qword_ptr[rdx + 8], rbx);
            a.mov(ecx, 5);                       // never runs
            a.hlt();
        });
        t.Cpu.SetRegister(1, 77);
        CpuRunResult result = t.Cpu.Run(1000);
        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)ExceptionVector.PageFault, result.Exception!.Vector);
        Assert.Equal(0x10_0000_0008UL, result.Exception.FaultAddress);
        Assert.Equal(TestCpu.CodeAddress + (ulong)(code.Length - 1 - 5 - 4), t.Cpu.Rip);
        Assert.Equal(0UL, t.Cpu.GetRegister(0));
        Assert.Equal(0x1234UL, t.Cpu.GetRegister(3));
        Assert.Equal(0x10_0000_0000UL, t.Cpu.GetRegister(2));
        Assert.Equal(77UL, t.Cpu.GetRegister(1));
        Assert.Equal(TestCpu.StackTop - 8, t.Cpu.GetRegister(4));
        Assert.Equal(0x1234UL, t.Memory.Read<ulong>(TestCpu.StackTop - 8));
        ulong flags = t.Cpu.GetState().Rflags;
        Assert.Equal(RflagsBits.Carry | RflagsBits.Zero, flags & (RflagsBits.Carry | RflagsBits.Zero | RflagsBits.Sign));
        Assert.Equal(5L, t.Cpu.InstructionsExecuted);
    }

    /// <summary>
    /// A loop of three blocks run by the chain loop (a handler call in the first, inline code only
    /// in the second) whose third block faults at its fourth instruction in the sixth iteration:
    /// the chain loop does not record the running block itself (the compiled code does, before a
    /// handler call), yet the fault is at that block's store, with the instructions before it retired.
    /// </summary>
    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    [InlineData(ExecutionTier.Native)]
    public void FaultInAChainedBlockIsPrecise(ExecutionTier tier)
    {
        NativeTranslatorTests.CompileAtFirstRun(tier);
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        Label first = default, second = default, third = default, store = default;
        byte[] code = t.Load(64, a =>
        {
            first = a.CreateLabel();
            second = a.CreateLabel();
            third = a.CreateLabel();
            store = a.CreateLabel();
            a.xor(ecx, ecx);
            a.xor(ebx, ebx);
            a.mov(rsi, 0x10_0000_0000);          // above the 4 GiB identity map: #PF
            a.Label(ref first);
            a.bt(ecx, 0);                        // a handler call (no inline form)
            a.inc(ecx);
            a.jmp(second);
            a.Label(ref second);
            a.add(rbx, 1);                       // inline code only
            a.jmp(third);
            a.Label(ref third);
            a.cmp(ecx, 5);
            a.mov(rdx, Data);
            a.cmova(rdx, rsi);                   // the sixth iteration stores to the unmapped address
            a.Label(ref store);
            a.mov(__qword_ptr[rdx + 8], rbx);
            a.jmp(first);
        });
        CpuRunResult result = t.Cpu.Run(1000);
        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)ExceptionVector.PageFault, result.Exception!.Vector);
        Assert.Equal(0x10_0000_0008UL, result.Exception.FaultAddress);
        Assert.Equal(TestCpu.CodeAddress + (ulong)(code.Length - 4 - 2), t.Cpu.Rip); // the store (4 bytes), then a short JMP
        Assert.Equal(6UL, t.Cpu.GetRegister(1));
        Assert.Equal(6UL, t.Cpu.GetRegister(3));
        Assert.Equal(5UL, t.Memory.Read<ulong>(Data + 8));
        Assert.Equal(3 + (5 * 10) + 3 + 2 + 3L, t.Cpu.InstructionsExecuted);
        if (tier != ExecutionTier.Interpreter)
        {
            Assert.True(t.Cpu.TranslatedInstructions >= 4 * 10, $"tier-1 code ran {t.Cpu.TranslatedInstructions} instructions");
        }
    }

    /// <summary>
    /// A loop of blocks run by the chain loop, one of them (in another page than the others) a
    /// block that overwrites its own next instruction in the fifth iteration: the running block is
    /// found overwritten (the chain loop does not record it; the compiled code does before the
    /// handler that stores) and the instruction runs as written, from then on.
    /// </summary>
    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    [InlineData(ExecutionTier.Native)]
    public void ChainedBlockThatOverwritesItselfRunsTheNewCode(ExecutionTier tier)
    {
        NativeTranslatorTests.CompileAtFirstRun(tier);
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        Label first = default, writer = default, last = default, patched = default;
        t.Load(64, a =>
        {
            first = a.CreateLabel();
            writer = a.CreateLabel();
            last = a.CreateLabel();
            patched = a.CreateLabel();
            a.xor(ecx, ecx);
            a.xor(r8d, r8d);
            a.Label(ref first);
            a.inc(ecx);
            a.jmp(writer);
            a.Label(ref last);                   // run after the writer: the interpreter's last block in the first iteration
            a.add(r8, rax);
            a.cmp(ecx, 8);
            a.jb(first);
            a.hlt();
            a.db(new byte[0x1000]);              // the writer in the next page
            a.Label(ref writer);
            a.mov(rdx, Data);
            a.lea(rdi, __[patched]);
            a.inc(rdi);                          // the immediate of the MOV below
            a.cmp(ecx, 5);
            a.cmove(rdx, rdi);                   // the fifth iteration stores into the code
            a.mov(__byte_ptr[rdx], 0x42);
            a.Label(ref patched);
            a.mov(eax, 0x11);
            a.jmp(last);
        });
        CpuRunResult result = t.Cpu.Run(1000);
        Assert.Equal(CpuStopReason.Halted, result.Reason);
        Assert.Equal(8UL, t.Cpu.GetRegister(1));
        Assert.Equal((4 * 0x11UL) + (4 * 0x42UL), t.Cpu.GetRegister(8));
    }

    /// <summary>MOVZX/MOVSX/MOVSXD from 8-, 16- and 32-bit registers and memory on edge values: inline, the interpreter's results.</summary>
    [Fact]
    public void InlineExtendsMatchTheInterpreter()
    {
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x800]);
                a.mov(ecx, 7);
                a.mov(r15, 0x0123_4567_89AB_CDEF);
                a.Label(ref loop);
                a.movzx(eax, __byte_ptr[rsi + rcx]);
                a.movsx(ebx, __byte_ptr[rsi + rcx + 1]);
                a.movzx(edx, __word_ptr[rsi + rcx * 2 + 16]);
                a.movsx(r8, __word_ptr[rsi + rcx * 2 + 17]);
                a.movsxd(r9, __dword_ptr[rsi + rcx * 4 + 32]);
                a.movsx(r10, __byte_ptr[rsi + rcx + 2]);
                a.movzx(r11, __word_ptr[rsi + rcx * 2 + 18]);
                a.movzx(r12d, al);
                a.movsx(r13, bl);
                a.movsxd(r14, r9d);
                a.mov(r15, r14);
                a.movsx(r15w, dl);                   // 16-bit destination: the upper 48 bits kept
                a.movzx(rbp, r8w);
                a.movsx(eax, r8w);
                a.movzx(ebx, r10b);
                a.add(rax, rbx);
                a.add(rax, r11);
                a.xor(rax, r12);
                a.add(rax, r13);
                a.add(rax, r14);
                a.add(rax, r15);
                a.add(rax, rbp);
                a.mov(__qword_ptr[rdi + rcx * 8], rax);
                a.mov(__qword_ptr[rdi + rcx * 8 + 64], r15);
                a.sub(ecx, 1);
                a.jns(loop);
                a.hlt();
            },
            SeedEdgeValues);
    }

    /// <summary>SETcc and CMOVcc after inline producers (conditions from locals), after handlers (from the lazy state), and a Jcc after them that still reads the producer.</summary>
    [Fact]
    public void InlineConditionalMovesMatchTheInterpreter()
    {
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                Label skip = a.CreateLabel();
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x800]);
                a.mov(ecx, 7);
                a.Label(ref loop);
                a.mov(rax, __qword_ptr[rsi + rcx * 8 + 0x100]);
                a.mov(rbx, __qword_ptr[rsi + rcx * 8 + 0x140]);
                a.mov(r9, -1L);
                a.mov(r11, -1L);
                a.mov(r13, -1L);
                a.cmp(rax, rbx);
                a.setb(dl);
                a.setl(r8b);
                a.cmovae(r9, rax);
                a.cmovg(r11d, ebx);                  // 32-bit: RAX's upper half cleared even when false
                a.cmovne(r13w, ax);
                a.sete(r10b);
                a.jbe(skip);                         // still from the CMP's operands in locals
                a.add(rdx, 0x100);
                a.Label(ref skip);
                a.test(eax, ebx);
                a.sets(r12b);
                a.setle(r14b);
                a.cmovle(r15, rbx);
                a.bt(rax, 3);                        // a handler: CF from the lazy state
                a.setb(bpl);
                a.cmovb(r13, rcx);
                a.setp(sil);
                a.seto(dil);
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x800]);
                a.shl(rdx, 8);
                a.or(rdx, r8);
                a.shl(rdx, 8);
                a.or(rdx, r10);
                a.shl(rdx, 8);
                a.or(rdx, r12);
                a.shl(rdx, 8);
                a.or(rdx, r14);
                a.shl(rdx, 8);
                a.or(rdx, rbp);
                a.mov(__qword_ptr[rdi + rcx * 8], rdx);
                a.mov(__qword_ptr[rdi + rcx * 8 + 64], r9);
                a.mov(__qword_ptr[rdi + rcx * 8 + 128], r11);
                a.mov(__qword_ptr[rdi + rcx * 8 + 192], r13);
                a.mov(__qword_ptr[rdi + rcx * 8 + 256], r15);
                a.sub(ecx, 1);
                a.jns(loop);
                a.hlt();
            },
            SeedEdgeValues,
            (nint)(delegate*<X86Cpu, ref Op, void>)&BitHandlers.RI<Size64>);
    }

    /// <summary>8- and 16-bit MOV r,m / m,r / m,imm and ADD/CMP/TEST with a narrow memory operand: inline, same memory, registers and flags.</summary>
    [Fact]
    public void InlineNarrowMemoryFormsMatchTheInterpreter()
    {
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                Label skip = a.CreateLabel();
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x800]);
                a.mov(ecx, 7);
                a.mov(rax, 0x1111_2222_3333_4444);
                a.Label(ref loop);
                a.mov(al, __byte_ptr[rsi + rcx]);
                a.mov(bx, __word_ptr[rsi + rcx * 2 + 16]);
                a.mov(__byte_ptr[rdi + rcx], al);
                a.mov(__word_ptr[rdi + rcx * 2 + 16], bx);
                a.mov(__byte_ptr[rdi + rcx + 48], 0x5A);
                a.mov(__word_ptr[rdi + rcx * 2 + 64], 0x1234);
                a.add(dl, __byte_ptr[rsi + rcx + 3]);
                a.sub(r8w, __word_ptr[rsi + rcx * 2 + 20]);
                a.cmp(__byte_ptr[rsi + rcx], 0x80);
                a.setae(r9b);
                a.test(__byte_ptr[rsi + rcx + 1], 0x81);
                a.setne(r10b);
                a.cmp(__word_ptr[rsi + rcx * 2 + 16], 0x7FFF);
                a.setg(r11b);
                a.cmp(cl, __byte_ptr[rsi + rcx]);
                a.setbe(r12b);
                a.cmp(__byte_ptr[rsi + rcx], bl);
                a.jl(skip);
                a.add(r13, 1);
                a.Label(ref skip);
                a.test(__word_ptr[rsi + rcx * 2 + 18], r8w);
                a.sets(r14b);
                a.mov(__byte_ptr[rdi + rcx + 96], r9b);
                a.mov(__byte_ptr[rdi + rcx + 104], r10b);
                a.mov(__byte_ptr[rdi + rcx + 112], r11b);
                a.mov(__byte_ptr[rdi + rcx + 120], r12b);
                a.mov(__byte_ptr[rdi + rcx + 128], r14b);
                a.mov(__word_ptr[rdi + rcx * 2 + 136], dx);
                a.mov(__word_ptr[rdi + rcx * 2 + 160], r8w);
                a.sub(ecx, 1);
                a.jns(loop);
                a.hlt();
            },
            SeedEdgeValues);
    }

    /// <summary>ADC r,r / r,imm (CF in, lazy state out) and SHR r,imm with live flags (CF, OF, SF, ZF, PF set eagerly) on edge values.</summary>
    [Fact]
    public void InlineAdcAndShrFlagsMatchTheInterpreter()
    {
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x800]);
                a.mov(ecx, 7);
                a.Label(ref loop);
                a.mov(rax, __qword_ptr[rsi + rcx * 8 + 0x100]);
                a.mov(rbx, __qword_ptr[rsi + rcx * 8 + 0x140]);
                a.mov(rdx, rax);
                a.mov(r8, rbx);
                a.add(rax, rbx);                     // CF from an inline ADD
                a.adc(rdx, r8);
                a.adc(r8d, 7);
                a.setb(r9b);
                a.seto(r10b);
                a.sets(r11b);
                a.setz(r12b);
                a.mov(r13, rdx);
                a.shr(r13, 5);
                a.setb(r14b);
                a.seto(r15b);
                a.setp(bpl);
                a.mov(__qword_ptr[rdi + rcx * 8], rdx);
                a.mov(__qword_ptr[rdi + rcx * 8 + 64], r8);
                a.mov(__qword_ptr[rdi + rcx * 8 + 128], r13);
                a.mov(eax, __dword_ptr[rsi + rcx * 4 + 32]);
                a.shr(eax, 1);
                a.adc(r13d, 0);                      // CF from the SHR
                a.sete(dl);
                a.shr(rbx, 63);
                a.sets(al);
                a.adc(rbx, rbx);
                a.shl(r9, 8);
                a.or(r9, r10);
                a.shl(r9, 8);
                a.or(r9, r11);
                a.shl(r9, 8);
                a.or(r9, r12);
                a.shl(r9, 8);
                a.or(r9, r14);
                a.shl(r9, 8);
                a.or(r9, r15);
                a.shl(r9, 8);
                a.or(r9, rbp);
                a.mov(__qword_ptr[rdi + rcx * 8 + 192], r9);
                a.mov(__qword_ptr[rdi + rcx * 8 + 256], r13);
                a.mov(__qword_ptr[rdi + rcx * 8 + 320], rdx);
                a.mov(__qword_ptr[rdi + rcx * 8 + 384], rbx);
                a.mov(__qword_ptr[rdi + rcx * 8 + 448], rax);
                a.sub(ecx, 1);
                a.jns(loop);
                a.hlt();
            },
            SeedEdgeValues);
    }

    /// <summary>
    /// ROL/ROR/SHL/SHR/SAR of 32- and 64-bit registers by an immediate and by CL, on edge values
    /// and counts (0, 1, size - 1, size, above it, masked; CL with garbage above the count), after a
    /// CMP whose flags a zero count must leave: result and RFLAGS (PUSHFQ) as the interpreter's,
    /// flags also through SETcc and a Jcc; with the flags dead (an ADD or another rotate next).
    /// </summary>
    [Theory]
    [InlineData(ShiftSemantics.Rol, 32)]
    [InlineData(ShiftSemantics.Rol, 64)]
    [InlineData(ShiftSemantics.Ror, 32)]
    [InlineData(ShiftSemantics.Ror, 64)]
    [InlineData(ShiftSemantics.Shl, 32)]
    [InlineData(ShiftSemantics.Shl, 64)]
    [InlineData(ShiftSemantics.Shr, 32)]
    [InlineData(ShiftSemantics.Shr, 64)]
    [InlineData(ShiftSemantics.Sar, 32)]
    [InlineData(ShiftSemantics.Sar, 64)]
    public void InlineShiftsMatchTheInterpreter(int kind, int bits)
    {
        int[] counts = [0, 1, 2, bits - 1, bits, bits + 1, bits + 7, 255];
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x200]);
                a.mov(r15d, 7);
                a.Label(ref loop);
                a.mov(rax, __qword_ptr[rsi + r15 * 8 + 0x100]);
                a.mov(rdx, __qword_ptr[rsi + r15 * 8 + 0x140]);
                int slot = 0;
                foreach (int count in counts)
                {
                    foreach (bool byCl in new[] { false, true })
                    {
                        Label over = a.CreateLabel();
                        a.mov(rbx, rax);
                        a.mov(rcx, 0x1234_5600UL | (uint)count);
                        a.cmp(rax, rdx);                     // flags a zero count keeps
                        EmitShift(a, kind, bits, byCl, count);
                        a.setc(r8b);
                        a.seto(r9b);
                        a.pushfq();
                        a.pop(r10);
                        a.jbe(over);                         // a Jcc on the shift's CF (or the CMP's)
                        a.or(r10, 0x10000);
                        a.Label(ref over);
                        a.shl(r9, 8);
                        a.or(r8, r9);
                        a.mov(__qword_ptr[rdi + r15 * 8 + (slot * 64)], rbx);
                        a.mov(__qword_ptr[rdi + r15 * 8 + (slot * 64) + 0x800], r10);
                        a.mov(__byte_ptr[rdi + r15 + (slot * 8) + 0xC00], r8b);
                        slot++;
                    }
                }

                // Flags dead: the next flag writer overwrites them (a rotate's by another rotate).
                a.mov(rbx, rax);
                a.mov(rcx, rdx);
                EmitShift(a, kind, bits, byCl: false, 3);
                EmitShift(a, kind, bits, byCl: false, 5);
                a.add(rcx, rbx);
                EmitShift(a, kind, bits, byCl: true, 0);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0xD00], rbx);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0xD40], rcx);
                a.mov(rbx, rdx);
                a.rol(ebx, 7);
                a.ror(ebx, 9);
                a.pushfq();
                a.pop(__qword_ptr[rdi + r15 * 8 + 0xD80]);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0xDC0], rbx);
                a.sub(r15d, 1);
                a.jns(loop);
                a.hlt();
            },
            SeedEdgeValues,
            (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.Pushf<Size64>,
            (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.PopM<Size64>);
    }

    private static void EmitShift(Assembler a, int kind, int bits, bool byCl, int count)
    {
        byte imm = (byte)count;
        if (bits == 32)
        {
            switch (kind)
            {
                case ShiftSemantics.Rol: if (byCl) { a.rol(ebx, cl); } else { a.rol(ebx, imm); } break;
                case ShiftSemantics.Ror: if (byCl) { a.ror(ebx, cl); } else { a.ror(ebx, imm); } break;
                case ShiftSemantics.Shl: if (byCl) { a.shl(ebx, cl); } else { a.shl(ebx, imm); } break;
                case ShiftSemantics.Shr: if (byCl) { a.shr(ebx, cl); } else { a.shr(ebx, imm); } break;
                default: if (byCl) { a.sar(ebx, cl); } else { a.sar(ebx, imm); } break;
            }

            return;
        }

        switch (kind)
        {
            case ShiftSemantics.Rol: if (byCl) { a.rol(rbx, cl); } else { a.rol(rbx, imm); } break;
            case ShiftSemantics.Ror: if (byCl) { a.ror(rbx, cl); } else { a.ror(rbx, imm); } break;
            case ShiftSemantics.Shl: if (byCl) { a.shl(rbx, cl); } else { a.shl(rbx, imm); } break;
            case ShiftSemantics.Shr: if (byCl) { a.shr(rbx, cl); } else { a.shr(rbx, imm); } break;
            default: if (byCl) { a.sar(rbx, cl); } else { a.sar(rbx, imm); } break;
        }
    }

    /// <summary>
    /// NEG and NOT at 8, 16, 32 and 64 bits, SBB r, r / r, imm at 32 and 64 (CF in from an inline
    /// CMP, the SUB-then-SBB borrow chain), BSWAP r32 / r64 and DIV r/m32, r/m64 (the inline case
    /// and the wide dividends the handler takes): registers, RFLAGS (PUSHFQ), SETcc and Jcc as the interpreter's.
    /// </summary>
    [Fact]
    public void InlineNegNotSbbBswapAndDivMatchTheInterpreter()
    {
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                Label skip = a.CreateLabel();
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x200]);
                a.mov(r15d, 7);
                a.Label(ref loop);
                a.mov(rax, __qword_ptr[rsi + r15 * 8 + 0x100]);
                a.mov(rdx, __qword_ptr[rsi + r15 * 8 + 0x140]);

                // NEG at every size (AH untouched by NEG AL), flags read by SETcc, PUSHFQ and a Jcc.
                a.mov(rbx, rax);
                a.neg(bl);
                a.setc(cl);
                a.mov(__qword_ptr[rdi + r15 * 8], rbx);
                a.mov(rbx, rax);
                a.neg(bx);
                a.seto(r14b);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x40], rbx);
                a.mov(rbx, rax);
                a.neg(ebx);
                a.pushfq();
                a.pop(__qword_ptr[rdi + r15 * 8 + 0x80]);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0xC0], rbx);
                a.mov(rbx, rax);
                a.neg(rbx);
                a.jl(skip);
                a.add(rcx, 1);
                a.Label(ref skip);
                a.pushfq();
                a.pop(__qword_ptr[rdi + r15 * 8 + 0x100]);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x140], rbx);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x180], rcx);

                // NOT at every size, between a CMP and the SETcc/PUSHFQ that read the CMP's flags.
                a.mov(rbx, rdx);
                a.cmp(rax, rdx);
                a.not(bl);
                a.not(bx);
                a.not(ebx);
                a.setb(cl);
                a.pushfq();
                a.pop(__qword_ptr[rdi + r15 * 8 + 0x1C0]);
                a.mov(r8, rbx);
                a.not(r8);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x200], rbx);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x240], r8);

                // SBB: CMP then SBB r, r (the mask idiom), SUB/SBB borrow chains, SBB r, imm; BSWAP.
                a.cmp(rax, rdx);
                a.sbb(rbx, rbx);
                a.mov(r8, rax);
                a.mov(r9, rdx);
                a.sub(r8, rdx);
                a.sbb(r9, rax);
                a.setb(r10b);
                a.sbb(r8d, 0x7F);
                a.seto(r11b);
                a.sbb(r9, -2);
                a.pushfq();
                a.pop(__qword_ptr[rdi + r15 * 8 + 0x280]);
                a.sbb(ebx, edx);
                a.pushfq();
                a.pop(__qword_ptr[rdi + r15 * 8 + 0x2C0]);
                a.bswap(r8d);
                a.bswap(r9);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x300], rbx);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x340], r8);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x380], r9);
                a.mov(__byte_ptr[rdi + r15 + 0x3C0], r10b);
                a.mov(__byte_ptr[rdi + r15 + 0x3C8], r11b);

                // DIV: 64-bit by a register and from memory with RDX 0 (inline) and RDX below the
                // divisor (the handler); 32-bit with EDX below the divisor. Divisors are never 0 here.
                a.mov(r12, rax);
                a.mov(r13, rdx);
                a.or(r13, 3);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x400], r13);
                a.xor(edx, edx);
                a.div(r13);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x440], rax);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x480], rdx);
                a.mov(rax, r12);
                a.xor(edx, edx);
                a.div(__qword_ptr[rdi + r15 * 8 + 0x400]);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x4C0], rax);
                a.mov(rax, r12);
                a.mov(rdx, r13);
                a.shr(rdx, 1);                       // RDX below the divisor, not 0: a 128-bit dividend
                a.div(r13);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x500], rax);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x540], rdx);
                a.mov(rax, r12);
                a.mov(edx, r13d);
                a.shr(edx, 1);                       // EDX below the divisor: EDX:EAX / r13d inline
                a.div(r13d);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x580], rax);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x5C0], rdx);
                a.mov(rax, r12);
                a.xor(edx, edx);
                a.div(__dword_ptr[rdi + r15 * 8 + 0x400]);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x600], rax);
                a.mov(__qword_ptr[rdi + r15 * 8 + 0x640], rdx);
                a.mov(rax, r12);
                a.sub(r15d, 1);
                a.jns(loop);
                a.hlt();
            },
            SeedEdgeValues,
            (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.Pushf<Size64>,
            (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.PopM<Size64>);
    }

    /// <summary>
    /// ADD/SUB/AND/OR/XOR m, r and m, imm and INC/DEC m at 8, 16, 32 and 64 bits (read-modify-write
    /// through the TLB's write check) on edge values: memory, registers and flags (PUSHFQ, SETcc,
    /// a Jcc, ADC reading INC's preserved CF) as the interpreter's.
    /// </summary>
    [Fact]
    public void InlineReadModifyWriteFormsMatchTheInterpreter()
    {
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                Label skip = a.CreateLabel();
                a.mov(rsi, Data);
                a.lea(rdi, __[rsi + 0x200]);
                a.mov(ecx, 7);
                a.Label(ref loop);
                a.mov(rax, __qword_ptr[rsi + rcx * 8 + 0x100]);
                a.mov(rbx, __qword_ptr[rsi + rcx * 8 + 0x140]);
                a.mov(__qword_ptr[rdi + rcx * 8], rax);
                a.mov(__qword_ptr[rdi + rcx * 8 + 0x40], rbx);
                a.add(__qword_ptr[rdi + rcx * 8], rbx);
                a.setc(r8b);
                a.sub(__dword_ptr[rdi + rcx * 8 + 4], ebx);
                a.seto(r9b);
                a.and(__word_ptr[rdi + rcx * 8 + 0x40], ax);
                a.sets(r10b);
                a.or(__byte_ptr[rdi + rcx * 8 + 0x41], al);
                a.setp(r11b);
                a.xor(__qword_ptr[rdi + rcx * 8 + 0x40], rax);
                a.pushfq();
                a.pop(__qword_ptr[rdi + rcx * 8 + 0x80]);
                a.add(__dword_ptr[rdi + rcx * 8], 0x7FFF_FFFF);
                a.jo(skip);
                a.sub(__word_ptr[rdi + rcx * 8 + 2], 0x8000);
                a.Label(ref skip);
                a.xor(__byte_ptr[rdi + rcx * 8 + 6], 0x80);
                a.and(__qword_ptr[rdi + rcx * 8 + 0x40], -0x100);
                a.or(__dword_ptr[rdi + rcx * 8 + 0x44], 1);
                a.pushfq();
                a.pop(__qword_ptr[rdi + rcx * 8 + 0xC0]);
                a.cmp(rax, rbx);                     // CF that INC and DEC keep
                a.inc(__byte_ptr[rdi + rcx * 8 + 0x100 + 7]);
                a.dec(__word_ptr[rdi + rcx * 8 + 0x100 + 2]);
                a.inc(__dword_ptr[rdi + rcx * 8]);
                a.setz(r12b);
                a.dec(__qword_ptr[rdi + rcx * 8 + 0x40]);
                a.adc(r13, 0);
                a.pushfq();
                a.pop(__qword_ptr[rdi + rcx * 8 + 0x140]);
                a.mov(__byte_ptr[rdi + rcx + 0x180], r8b);
                a.mov(__byte_ptr[rdi + rcx + 0x188], r9b);
                a.mov(__byte_ptr[rdi + rcx + 0x190], r10b);
                a.mov(__byte_ptr[rdi + rcx + 0x198], r11b);
                a.mov(__byte_ptr[rdi + rcx + 0x1A0], r12b);
                a.sub(ecx, 1);
                a.jns(loop);
                a.hlt();
            },
            SeedEdgeValues,
            (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.Pushf<Size64>,
            (nint)(delegate*<X86Cpu, ref Op, void>)&StackHandlers.PopM<Size64>);
    }

    /// <summary>ADD m, r and INC m on an unmapped address (#PF), and ADD m, r into the running code page (the handler's code-page path): the interpreter's exception, RIP, registers and memory.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void InlineReadModifyWriteFaultsLikeTheInterpreter(int which)
    {
        string Run(ExecutionTier tier, out CpuRunResult result)
        {
            using var t = new TestCpu();
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            t.Load(64, a =>
            {
                a.mov(rax, 0x1234_5678_9ABC);
                a.add(rax, 1);
                a.mov(rsi, which == 2 ? TestCpu.CodeAddress : 0x10_0000_0000);
                if (which == 1)
                {
                    a.inc(__dword_ptr[rsi + 8]);
                }
                else
                {
                    a.add(__qword_ptr[rsi + 8], rax);
                }

                a.hlt();
            });
            result = t.Cpu.Run(1000);
            return t.Cpu.GetState().Format() + $"\n{t.Cpu.InstructionsExecuted} {t.Memory.Read<ulong>(TestCpu.CodeAddress + 8):x}";
        }

        string interpreted = Run(ExecutionTier.Interpreter, out CpuRunResult a);
        string translated = Run(ExecutionTier.Always, out CpuRunResult b);
        Assert.Equal(a.Reason, b.Reason);
        Assert.Equal(interpreted, translated);
        if (which != 2)
        {
            Assert.Equal(CpuStopReason.Exception, a.Reason);
            Assert.Equal((byte)ExceptionVector.PageFault, a.Exception!.Vector);
            Assert.Equal(a.Exception.FaultAddress, b.Exception!.FaultAddress);
        }
    }

    /// <summary>
    /// A block whose memory ops take their slow paths (TLB misses on a cold TLB, accesses that
    /// cross into the next page, registers dirty at each): looping, it ends in the interpreter's
    /// registers and memory. With the base of op <paramref name="op"/> unmapped, or in a window
    /// whose next page is not present (where the op's access crosses into it), it faults there
    /// with the interpreter's #PF, CR2, RIP, registers and memory (op -1: no fault).
    /// </summary>
    [Theory]
    [InlineData(-1, false)]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, false)]
    [InlineData(4, false)]
    [InlineData(0, true)]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(3, true)]
    [InlineData(4, true)]
    public void SlowPathsResumeAndFaultLikeTheInterpreter(int op, bool window)
    {
        const ulong Unmapped = 0x10_0000_0000;
        const ulong Window = 0x80_0000_0000; // 4 KiB pages: Data, then a page not present
        AssemblerRegister64[] bases = [r12, r13, r14, r15, rsi];
        bool[] crosses = [false, true, true, false, true];
        string Run(ExecutionTier tier, out CpuRunResult result, out long translated)
        {
            using var t = new TestCpu();
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            MapWindow(t, Window);
            t.Memory.Write(Data + 0xFF8, 0x0123_4567_89AB_CDEFUL);
            t.Memory.Write(Data + 0x1000, 0xFEDC_BA98_7654_3210UL);
            t.Load(64, a =>
            {
                Label loop = a.CreateLabel();
                for (int k = 0; k < bases.Length; k++)
                {
                    a.mov(bases[k], k != op ? Data : window ? Window : Unmapped);
                }

                if (window)
                {
                    // The window's first page in the TLB (a write fills both tags): a crossing access hits its tag.
                    a.mov(__qword_ptr[bases[op] + 0x100], rax);
                }

                a.mov(rax, 0x1111_2222_3333_4444);
                a.mov(edi, 3);
                a.Label(ref loop);
                a.add(rax, 3);
                a.mov(__qword_ptr[r12 + 0x10], rax);          // a store
                a.lea(rcx, __[rax + 7]);
                a.mov(rdx, __qword_ptr[r13 + 0xFFC]);         // a load across the page end
                a.add(rdx, rcx);
                a.mov(__qword_ptr[r14 + 0xFFA], rdx);         // a store across it
                a.inc(r8);
                a.add(__dword_ptr[r15 + 0x20], ecx);          // read-modify-write
                a.xor(r10, rdx);
                a.movzx(r11d, __word_ptr[rsi + 0xFFF]);       // a word across it
                a.add(r11, r10);
                a.dec(edi);
                a.jnz(loop);
                a.hlt();
            });
            result = t.Cpu.Run(1000);
            translated = t.Cpu.TranslatedInstructions;
            var data = new byte[0x2000];
            t.Memory.Read(Data, data);
            return t.Cpu.GetState().Format() + $"\n{t.Cpu.InstructionsExecuted} {Convert.ToHexString(data)}";
        }

        string interpreted = Run(ExecutionTier.Interpreter, out CpuRunResult a, out long _);
        string compiled = Run(ExecutionTier.Always, out CpuRunResult b, out long tier1);
        Assert.Equal(a.Reason, b.Reason);
        Assert.Equal(interpreted, compiled);
        if (op < 0 || (window && !crosses[op]))
        {
            Assert.Equal(CpuStopReason.Halted, a.Reason);
            Assert.True(tier1 > 0, "nothing ran in tier 1");
        }
        else
        {
            Assert.Equal(CpuStopReason.Exception, a.Reason);
            Assert.Equal((byte)ExceptionVector.PageFault, a.Exception!.Vector);
            Assert.Equal(window ? Window + 0x1000 : Unmapped, a.Exception.FaultAddress & ~0xFFFUL);
            Assert.Equal(a.Exception.FaultAddress, b.Exception!.FaultAddress);
        }
    }

    /// <summary>Maps <paramref name="window"/> (PML4 slot 1 and up) with 4 KiB pages: its first page on <see cref="Data"/>, the next not present.</summary>
    private static void MapWindow(TestCpu t, ulong window)
    {
        const ulong presentWritableUser = 0x7;
        const ulong pdpt = 0x10_0000;
        const ulong pd = 0x10_1000;
        const ulong pt = 0x10_2000;
        t.Memory.Write(t.IdentityPml4 + (((window >> 39) & 0x1FF) * 8), pdpt | presentWritableUser);
        t.Memory.Write(pdpt + (((window >> 30) & 0x1FF) * 8), pd | presentWritableUser);
        t.Memory.Write(pd + (((window >> 21) & 0x1FF) * 8), pt | presentWritableUser);
        t.Memory.Write(pt + (((window >> 12) & 0x1FF) * 8), Data | presentWritableUser);
    }

    /// <summary>DIV by zero from a register and from memory, DIV whose quotient overflows, DIV from an unmapped address: the interpreter's #DE / #PF, RIP and registers.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void InlineDivFaultsLikeTheInterpreter(int which)
    {
        string Run(ExecutionTier tier, out CpuRunResult result)
        {
            using var t = new TestCpu();
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            t.Load(64, a =>
            {
                a.mov(rsi, Data);
                a.mov(rax, 0x1234_5678_9ABC);
                a.mov(rbx, 0x55);
                a.add(rbx, 1);
                a.xor(ecx, ecx);
                a.mov(__qword_ptr[rsi], rcx);
                switch (which)
                {
                    case 0:
                        a.xor(edx, edx);
                        a.div(rcx);                    // by a zero register
                        break;
                    case 1:
                        a.xor(edx, edx);
                        a.div(__qword_ptr[rsi]);       // by zero from memory
                        break;
                    case 2:
                        a.mov(edx, 0x56);
                        a.div(ebx);                    // EDX = divisor: the quotient does not fit
                        break;
                    default:
                        a.mov(rsi, 0x10_0000_0000);   // above the identity map
                        a.xor(edx, edx);
                        a.div(__qword_ptr[rsi]);
                        break;
                }

                a.hlt();
            });
            result = t.Cpu.Run(1000);
            return t.Cpu.GetState().Format() + $"\n{t.Cpu.InstructionsExecuted}";
        }

        string interpreted = Run(ExecutionTier.Interpreter, out CpuRunResult a);
        string translated = Run(ExecutionTier.Always, out CpuRunResult b);
        Assert.Equal(CpuStopReason.Exception, a.Reason);
        Assert.Equal(a.Reason, b.Reason);
        Assert.Equal(which == 3 ? (byte)ExceptionVector.PageFault : (byte)ExceptionVector.DivideError, a.Exception!.Vector);
        Assert.Equal(a.Exception.Vector, b.Exception!.Vector);
        Assert.Equal(interpreted, translated);
    }

    /// <summary>CALL rel32 and RET / RET imm16 inline: nested and recursive calls give the interpreter's registers, stack and memory.</summary>
    [Fact]
    public void InlineCallAndRetMatchTheInterpreter()
    {
        AssertInlineMatchesInterpreter(
            a =>
            {
                Label loop = a.CreateLabel();
                Label leaf = a.CreateLabel();
                Label release = a.CreateLabel();
                Label middle = a.CreateLabel();
                Label recurse = a.CreateLabel();
                Label done = a.CreateLabel();
                a.mov(ecx, 200);
                a.xor(eax, eax);
                a.Label(ref loop);
                a.call(middle);
                a.push(rcx);
                a.call(release);                     // RET 8 releases the pushed RCX
                a.mov(edx, 6);
                a.call(recurse);
                a.sub(ecx, 1);
                a.jnz(loop);
                a.hlt();
                a.Label(ref middle);
                a.call(leaf);
                a.add(rax, 3);
                a.ret();
                a.Label(ref leaf);
                a.add(rax, rcx);
                a.ret();
                a.Label(ref release);
                a.add(rax, __qword_ptr[rsp + 8]);
                a.mov(rbx, rsp);
                a.ret(8);
                a.Label(ref recurse);
                a.sub(edx, 1);
                a.jz(done);
                a.call(recurse);
                a.add(rax, rdx);
                a.Label(ref done);
                a.ret();
            });
    }

    /// <summary>CALL and RET whose stack access faults (#PF), and a RET to a non-canonical address (#GP): the interpreter's exception, RIP, RSP and registers.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void InlineCallAndRetFaultLikeTheInterpreter(int which)
    {
        string Run(ExecutionTier tier, out CpuRunResult result)
        {
            using var t = new TestCpu();
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            t.Load(64, a =>
            {
                Label callee = a.CreateLabel();
                a.mov(rbx, 0x1234);
                a.add(rbx, 1);
                switch (which)
                {
                    case 0:
                        a.mov(rsp, 0x10_0000_0000);    // above the identity map: the push faults
                        a.call(callee);
                        break;
                    case 1:
                        a.mov(rsp, 0x10_0000_0000);    // the pop faults
                        a.ret();
                        break;
                    default:
                        a.mov(rax, 0x0000_8000_0000_0000);
                        a.push(rax);                   // a non-canonical return address: #GP with RSP unchanged
                        a.ret();
                        break;
                }

                a.hlt();
                a.Label(ref callee);
                a.hlt();
            });
            result = t.Cpu.Run(1000);
            return t.Cpu.GetState().Format() + $"\n{t.Cpu.InstructionsExecuted} {t.Memory.Read<ulong>(TestCpu.StackTop - 8):x}";
        }

        string interpreted = Run(ExecutionTier.Interpreter, out CpuRunResult a);
        string translated = Run(ExecutionTier.Always, out CpuRunResult b);
        Assert.Equal(CpuStopReason.Exception, a.Reason);
        Assert.Equal(a.Reason, b.Reason);
        Assert.Equal(which == 2 ? (byte)ExceptionVector.GeneralProtection : (byte)ExceptionVector.PageFault, a.Exception!.Vector);
        Assert.Equal(a.Exception.Vector, b.Exception!.Vector);
        Assert.Equal(a.Exception.FaultAddress, b.Exception.FaultAddress);
        Assert.Equal(interpreted, translated);
    }

    /// <summary>Edge values for the inline-form tests: bytes, words, dwords and qwords at Data.</summary>
    private static void SeedEdgeValues(TestCpu t)
    {
        byte[] bytes = [0x00, 0x7F, 0x80, 0xFF, 0x01, 0xFE, 0x81, 0x7E, 0x55, 0xAA, 0x00, 0x80, 0xFF, 0x7F, 0x01, 0x00];
        for (int k = 0; k < 16; k++)
        {
            t.Memory.Write(Data + (ulong)k, new[] { bytes[k] });
        }

        ushort[] words = [0x0000, 0x7FFF, 0x8000, 0xFFFF, 0x0080, 0xFF7F, 0x8001, 0x1234, 0xFEDC, 0x0001, 0x00FF, 0xFF00, 0x7FFE, 0x8000, 0xFFFF, 0x0000];
        for (int k = 0; k < 16; k++)
        {
            t.Memory.Write(Data + 16 + (ulong)(k * 2), BitConverter.GetBytes(words[k]));
        }

        uint[] dwords = [0, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x80, 0xFFFF_FF7F, 0x1234_5678, 0x8765_4321, 0xFFFF_0000, 0x0000_FFFF, 1, 0x8000_0001];
        for (int k = 0; k < dwords.Length; k++)
        {
            t.Memory.Write(Data + 32 + (ulong)(k * 4), BitConverter.GetBytes(dwords[k]));
        }

        ulong[] left = [0, 1, 0x8000_0000_0000_0000, ulong.MaxValue, 0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF, 0x1_0000_0000, 0x80];
        ulong[] right = [0, 2, 1, ulong.MaxValue, 0x8000_0000_0000_0000, 0xFFFF_FFFF, 0x80, 0x1_0000_0080];
        for (int k = 0; k < 8; k++)
        {
            t.Memory.Write(Data + 0x100 + (ulong)(k * 8), BitConverter.GetBytes(left[k]));
            t.Memory.Write(Data + 0x140 + (ulong)(k * 8), BitConverter.GetBytes(right[k]));
        }
    }

    /// <summary>
    /// Runs <paramref name="program"/> to HLT interpreted and with every block translated first:
    /// same registers, flags, data and stack, and the translated run's blocks call no more than
    /// <paramref name="handlerCalls"/> handlers (the forms under test were emitted inline).
    /// </summary>
    private static void AssertInlineMatchesInterpreter(Action<Assembler> program, Action<TestCpu>? seed = null, params nint[] handlersCalled)
    {
        (string State, byte[] Data, byte[] Stack) Run(ExecutionTier tier, out long translated)
        {
            using var t = new TestCpu();
            t.Cpu.Tier = tier;
            t.EnterLongMode();
            seed?.Invoke(t);
            t.Load(64, program);
            t.RunToHalt();
            translated = t.Cpu.TranslatedInstructions;
            var data = new byte[0x1000];
            t.Memory.Read(Data, data);
            var stack = new byte[256];
            t.Memory.Read(TestCpu.StackTop - 256, stack);
            return (t.Cpu.GetState().Format(), data, stack);
        }

        (string State, byte[] Data, byte[] Stack) interpreted = Run(ExecutionTier.Interpreter, out long _);
        BlockTranslator.CalledHandlersOnThisThread.Clear();
        (string State, byte[] Data, byte[] Stack) translated = Run(ExecutionTier.Always, out long tier1);
        nint[] called = [.. BlockTranslator.CalledHandlersOnThisThread];
        Assert.Equal(interpreted.State, translated.State);
        Assert.Equal(interpreted.Data, translated.Data);
        Assert.Equal(interpreted.Stack, translated.Stack);
        Assert.True(tier1 > 0, "nothing ran in tier 1");
        nint hlt = (nint)(delegate*<X86Cpu, ref Op, void>)&MiscHandlers.Hlt;
        Assert.All(called, handler => Assert.True(handler == hlt || handlersCalled.Contains(handler), $"a handler call for an op expected inline: 0x{handler:x}"));
    }

    private static void LoadMix(TestCpu t)
    {
        t.Load(64, a =>
        {
            Label loop = a.CreateLabel();
            Label helper = a.CreateLabel();
            Label skip = a.CreateLabel();
            a.mov(rsi, Data);
            a.xor(eax, eax);
            a.mov(rbx, 0x9E3779B97F4A7C15);
            a.Label(ref loop);
            a.mov(rdx, rcx);
            a.and(edx, 63);
            a.add(rax, __qword_ptr[rsi + rdx * 8]);
            a.xor(rax, rbx);
            a.adc(eax, ecx);
            a.shl(rax, 3);
            a.mov(__qword_ptr[rsi + rdx * 8], rax);
            a.lea(r8, __[rax + rcx * 4 + 12]);
            a.imul(r8, rbx);
            a.cmp(r8d, 0x7000_0000);
            a.jb(skip);
            a.call(helper);
            a.Label(ref skip);
            a.sub(rcx, 1);
            a.jnz(loop);
            a.hlt();
            a.Label(ref helper);
            a.push(rax);
            a.push(0x55);
            a.pop(r9);
            a.pop(r10);
            a.or(__dword_ptr[rsi + 8], r9d);
            a.cmp(__qword_ptr[rsi], 7);
            a.test(__dword_ptr[rsi + 16], r10d);
            a.ret();
        });
    }

    private static (VcpuStateSnapshot, byte[]) RunMix(ExecutionTier tier, out long translated)
    {
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        LoadMix(t);
        t.Cpu.SetRegister(1, 5000);
        t.RunToHalt();
        translated = t.Cpu.TranslatedInstructions;
        var data = new byte[512];
        t.Memory.Read(Data, data);
        Machine.VcpuState s = t.Cpu.GetState();
        return (new VcpuStateSnapshot(s.Rax, s.Rbx, s.Rcx, s.Rdx, s.Rsi, s.Rsp, s.R8, s.R9, s.R10, s.Rip, s.Rflags), data);
    }

    private readonly record struct VcpuStateSnapshot(ulong Rax, ulong Rbx, ulong Rcx, ulong Rdx, ulong Rsi, ulong Rsp, ulong R8, ulong R9, ulong R10, ulong Rip, ulong Rflags);
}
