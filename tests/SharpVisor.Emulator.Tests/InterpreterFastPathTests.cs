using Iced.Intel;
using SharpVisor.Emulator.Translator;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// The interpreter's fast paths in 64-bit mode: the flat memory-operand handlers the binder picks
/// (64-bit address size, ES/CS/SS/DS) and the PUSH/POP stack path, against what the general paths
/// do — every addressing form, FS/GS with a base and 32-bit addresses (not flat), page-crossing
/// accesses and precise faults — in the interpreter and with every block translated.
/// </summary>
public sealed unsafe class InterpreterFastPathTests
{
    private const ulong Data = 0x40000;

    // Above the 4 GiB TestCpu maps: not present.
    private const ulong Unmapped = 0x1_0000_0000;

    private const ulong NonCanonical = 0x8000_0000_0000;

    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    public void FlatOperandsReadAndWriteTheirAddresses(ExecutionTier tier)
    {
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        t.Load(64, a =>
        {
            Label constant = a.CreateLabel();
            a.mov(rbx, Data);
            a.mov(esi, 3);
            a.mov(rax, 0x1122_3344_5566_7788);
            a.mov(__qword_ptr[rbx + 8], rax);                // base + disp
            a.mov(__qword_ptr[rbx + rsi * 8 + 16], -5);      // base + index * scale + disp, immediate
            a.mov(__byte_ptr[rbx + rsi], 0x7F);              // 8-bit immediate
            a.mov(__word_ptr[rbx + rsi * 2 + 0x20], ax);     // 16-bit register
            a.mov(rcx, __qword_ptr[rbx + 8]);
            a.movzx(edx, __byte_ptr[rbx + 9]);
            a.movsx(r8, __word_ptr[rbx + 14]);
            a.movsxd(r9, __dword_ptr[rbx + 12]);
            a.mov(r10, __qword_ptr[constant]);               // RIP-relative
            a.mov(r11, __qword_ptr[Data + 40]);              // displacement only
            a.mov(r12d, __dword_ptr[rsi * 4 + (long)(Data - 4)]); // index without base
            a.mov(r13, 100);
            a.add(__qword_ptr[rbx + rsi * 8 + 0x40], r13);  // ALU m,r: read, modify, write
            a.sub(__dword_ptr[rbx + rsi * 8 + 0x40], 30);   // ALU m,imm
            a.add(r13, __qword_ptr[rbx + rsi * 8 + 0x40]);  // ALU r,m
            a.cmp(__byte_ptr[rbx + 3], 0x7F);               // CMP m,imm: ZF
            a.sete(r14b);
            a.test(__qword_ptr[rbx + 8], r13);
            a.setne(r15b);
            a.hlt();
            a.Label(ref constant);
            a.dq(0xCAFE_F00D_DEAD_BEEF);
        });

        t.RunToHalt();

        Assert.Equal(0x1122_3344_5566_7788UL, t.Cpu.GetRegister(1));
        Assert.Equal(0x77UL, t.Cpu.GetRegister(2));
        Assert.Equal(0x1122UL, t.Cpu.GetRegister(8));
        Assert.Equal(0x1122_3344UL, t.Cpu.GetRegister(9));
        Assert.Equal(0xCAFE_F00D_DEAD_BEEFUL, t.Cpu.GetRegister(10));
        Assert.Equal(unchecked((ulong)-5L), t.Cpu.GetRegister(11));
        Assert.Equal(0x5566_7788UL, t.Cpu.GetRegister(12));
        Assert.Equal(170UL, t.Cpu.GetRegister(13));
        Assert.Equal(70UL, t.Memory.Read<ulong>(Data + 0x58));
        Assert.Equal(1UL, t.Cpu.GetRegister(14) & 0xFF);
        Assert.Equal(1UL, t.Cpu.GetRegister(15) & 0xFF); // 0x..5566_7788 & 170 != 0
        Assert.Equal(0x7F, t.Memory.Read<byte>(Data + 3));
        Assert.Equal((ushort)0x7788, t.Memory.Read<ushort>(Data + 0x26));
    }

    /// <summary>FS and GS keep their bases and a 32-bit address wraps: neither is a flat operand.</summary>
    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    public void SegmentBasesAndShortAddressesStillApply(ExecutionTier tier)
    {
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.Memory.Write(Data + 0x1000, 0x1111UL);
        t.Memory.Write(Data + 0x2000, 0x2222UL);
        t.Memory.Write(Data + 0x10, 0x3333UL);
        t.EnterLongMode();
        t.Load(64, a =>
        {
            a.mov(ecx, X86Cpu.MsrFsBase);
            a.mov(eax, 0x1000);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, X86Cpu.MsrFsBase + 1); // GS base
            a.mov(eax, 0x2000);
            a.wrmsr();
            a.mov(ebx, (uint)Data);
            a.mov(r8, __qword_ptr.fs[rbx]);
            a.mov(r9, __qword_ptr.gs[rbx + 8]);
            a.mov(__qword_ptr.gs[rbx + 8], r8);
            a.mov(ecx, 0xFFFF_FFF0);
            a.mov(edx, (uint)Data + 0x20);
            a.mov(r10, __qword_ptr[ecx + edx]); // 0x67: (ECX + EDX) mod 2^32
            a.hlt();
        });
        t.Memory.Write(Data + 0x2008, 0x4444UL);

        t.RunToHalt();

        Assert.Equal(0x1111UL, t.Cpu.GetRegister(8));
        Assert.Equal(0x4444UL, t.Cpu.GetRegister(9));
        Assert.Equal(0x1111UL, t.Memory.Read<ulong>(Data + 0x2008));
        Assert.Equal(0x3333UL, t.Cpu.GetRegister(10));
    }

    [Theory]
    [InlineData(ExecutionTier.Interpreter)]
    [InlineData(ExecutionTier.Always)]
    public void AccessesAcrossAPageBoundarySplit(ExecutionTier tier)
    {
        const ulong page = Data + 0x3000;
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        t.Load(64, a =>
        {
            a.mov(rbx, page);
            a.mov(rax, 0x0102_0304_0506_0708);
            a.mov(__qword_ptr[rbx - 3], rax);
            a.mov(rcx, __qword_ptr[rbx - 3]);
            a.movzx(edx, __word_ptr[rbx - 1]);
            a.mov(rsp, page + 4);
            a.push(rax);                  // RSP - 8 = page - 4
            a.pop(rsi);
            a.mov(r8, __qword_ptr[rbx - 4]);
            a.hlt();
        });

        t.RunToHalt();

        Assert.Equal(0x0102_0304_0506_0708UL, t.Cpu.GetRegister(1));
        Assert.Equal(0x0506UL, t.Cpu.GetRegister(2));
        Assert.Equal(0x0102_0304_0506_0708UL, t.Cpu.GetRegister(6));
        Assert.Equal(0x0102_0304_0506_0708UL, t.Cpu.GetRegister(8));
        Assert.Equal(page + 4, t.Cpu.GetRegister(4));
        Assert.Equal(0x0102_0304_0506_0708UL, t.Memory.Read<ulong>(page - 4));
    }

    public enum Access
    {
        Load,
        Store,
        StoreImmediate,
        ZeroExtend,
        SignExtend,
        AluStore,
        AluLoad,
        Push,
        Pop,
    }

    /// <summary>
    /// A fault leaves RIP at the instruction, the one before it retired, RSP as it was and CR2 at
    /// the address: #PF on a page that is not present, #GP on a non-canonical address, #SS when
    /// the base is RSP or RBP or the access is a push or pop.
    /// </summary>
    [Theory]
    [InlineData(ExecutionTier.Interpreter, Access.Load, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.Store, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.StoreImmediate, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.ZeroExtend, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.SignExtend, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.Load, NonCanonical, false, ExceptionVector.GeneralProtection)]
    [InlineData(ExecutionTier.Interpreter, Access.Store, NonCanonical, true, ExceptionVector.StackSegment)]
    [InlineData(ExecutionTier.Interpreter, Access.AluStore, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.AluLoad, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.AluStore, NonCanonical, true, ExceptionVector.StackSegment)]
    [InlineData(ExecutionTier.Interpreter, Access.AluLoad, NonCanonical, false, ExceptionVector.GeneralProtection)]
    [InlineData(ExecutionTier.Interpreter, Access.Push, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.Pop, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Interpreter, Access.Push, NonCanonical, false, ExceptionVector.StackSegment)]
    [InlineData(ExecutionTier.Interpreter, Access.Pop, NonCanonical, false, ExceptionVector.StackSegment)]
    [InlineData(ExecutionTier.Always, Access.Load, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Always, Access.Store, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Always, Access.StoreImmediate, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Always, Access.SignExtend, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Always, Access.Load, NonCanonical, false, ExceptionVector.GeneralProtection)]
    [InlineData(ExecutionTier.Always, Access.Store, NonCanonical, true, ExceptionVector.StackSegment)]
    [InlineData(ExecutionTier.Always, Access.AluStore, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Always, Access.AluLoad, NonCanonical, false, ExceptionVector.GeneralProtection)]
    [InlineData(ExecutionTier.Always, Access.Push, Unmapped, false, ExceptionVector.PageFault)]
    [InlineData(ExecutionTier.Always, Access.Pop, NonCanonical, false, ExceptionVector.StackSegment)]
    public void FaultsArePrecise(ExecutionTier tier, Access access, ulong address, bool rbpBase, ExceptionVector expected)
    {
        bool stack = access is Access.Push or Access.Pop;
        using var t = new TestCpu();
        t.Cpu.Tier = tier;
        t.EnterLongMode();
        ulong faultAt = 0;
        t.Load(64, a =>
        {
            AssemblerRegister64 b = rbpBase ? rbp : rbx;
            a.mov(b, address - 8);
            if (stack)
            {
                a.mov(rsp, access == Access.Push ? address + 8 : address);
            }

            a.mov(eax, 1);
            Label faulting = a.CreateLabel();
            a.Label(ref faulting);
            switch (access)
            {
                case Access.Load: a.mov(rcx, __qword_ptr[b + 8]); break;
                case Access.Store: a.mov(__qword_ptr[b + 8], rax); break;
                case Access.StoreImmediate: a.mov(__dword_ptr[b + 8], 7); break;
                case Access.ZeroExtend: a.movzx(ecx, __byte_ptr[b + 8]); break;
                case Access.SignExtend: a.movsx(rcx, __word_ptr[b + 8]); break;
                case Access.AluStore: a.add(__qword_ptr[b + 8], rax); break;
                case Access.AluLoad: a.cmp(rcx, __qword_ptr[b + 8]); break;
                case Access.Push: a.push(rax); break;
                case Access.Pop: a.pop(rcx); break;
            }

            a.hlt();
        });
        faultAt = FaultingRip(t, stack ? 3 : 2);

        CpuRunResult result = t.Cpu.Run(1000);

        Assert.Equal(CpuStopReason.Exception, result.Reason);
        Assert.Equal((byte)expected, result.Exception!.Vector);
        Assert.Equal(faultAt, t.Cpu.Rip);
        Assert.Equal(1UL, t.Cpu.GetRegister(0));
        if (stack)
        {
            Assert.Equal(access == Access.Push ? address + 8 : address, t.Cpu.GetRegister(4));
        }

        if (expected == ExceptionVector.PageFault)
        {
            Assert.Equal(address, t.Cpu.Cr2);
        }
    }

    /// <summary>Tier 1 emits a flat handler's instruction inline exactly as its general form's.</summary>
    [Fact]
    public void FlatFormsAreInlinedLikeTheirGeneralForms()
    {
        int pairs = 0;
        foreach (KeyValuePair<nint, nint> pair in FlatForms.Pairs)
        {
            Assert.NotEqual(pair.Key, pair.Value);
            Assert.Equal(HandlerCatalog.FormOf(pair.Key), HandlerCatalog.FormOf(pair.Value));
            pairs++;
        }

        Assert.True(pairs >= 100, $"{pairs} flat forms");
        Assert.NotEqual(InlineKind.None, HandlerCatalog.FormOf((nint)(delegate*<X86Cpu, ref Op, void>)&MoveHandlers.MovRMFlat<Size64>).Kind);
        Assert.Equal(InlineKind.AluMI, HandlerCatalog.FormOf((nint)(delegate*<X86Cpu, ref Op, void>)&AluHandlers.MIFlat<CmpOp, Size32>).Kind);
    }

    // RIP of the instruction after the first `skip` (the faulting one), decoded from the loaded code.
    private static ulong FaultingRip(TestCpu t, int skip)
    {
        byte[] code = new byte[64];
        t.Memory.Read(TestCpu.CodeAddress, code);
        var decoder = Iced.Intel.Decoder.Create(64, code, TestCpu.CodeAddress);
        ulong rip = TestCpu.CodeAddress;
        for (int i = 0; i < skip; i++)
        {
            decoder.Decode(out Instruction ins);
            rip = ins.NextIP;
        }

        return rip;
    }
}
