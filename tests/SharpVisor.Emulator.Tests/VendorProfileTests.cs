using System.Buffers.Binary;
using Iced.Intel;
using SharpVisor.Machine;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// Every behaviour where the Intel and AMD profiles differ, run under both profiles explicitly,
/// so a run on either vendor's host checks the other vendor's behaviour too (the differential
/// suite only checks the host's). Intel's expectations come from the SDM, AMD's from the APM or,
/// where the APM leaves a result undefined, from measurements on an AMD EPYC (Zen) host (docs/emulator.md).
/// </summary>
public sealed class VendorProfileTests
{
    private const ulong Data = 0x20000;
    private const ulong Area = 0x30000;

    /// <summary>RAM ends at 2 MiB; a page directory maps exactly that, so higher addresses raise #PF.</summary>
    private const ulong Unmapped = 0x40_0000;

    private static TestCpu LongMode(CpuVendor vendor, bool limitedMapping = false)
    {
        var t = new TestCpu(model: CpuModel.ForVendor(vendor));
        if (limitedMapping)
        {
            // PDPT[0] → a page directory with one 2 MiB page: the rest of the first GiB is not present.
            const ulong directory = 0x70000;
            ulong pdpt = t.IdentityPml4 + 0x1000;
            t.Memory.Write(pdpt, directory | 0x7);
            t.Memory.Write(directory, 0x87UL);
            for (ulong i = 1; i < 512; i++)
            {
                t.Memory.Write(directory + (i * 8), 0UL);
            }
        }

        t.EnterLongMode();
        VcpuState state = t.Cpu.GetState();
        state.Cr4 |= 1UL << 18; // OSXSAVE
        t.Cpu.SetState(state);
        t.Cpu.Xcr0 = CpuModel.SupportedXcr0;
        return t;
    }

    private static CpuException RunToException(TestCpu t)
    {
        CpuRunResult result = t.Cpu.Run(1000);
        Assert.True(result.Reason == CpuStopReason.Exception, $"expected an exception, got {result}");
        return result.Exception!;
    }

    private static string VendorString(CpuModel model)
    {
        (uint _, uint ebx, uint ecx, uint edx) = model.Query(0, 0, osxsave: false);
        Span<byte> text = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(text, ebx);
        BinaryPrimitives.WriteUInt32LittleEndian(text[4..], edx);
        BinaryPrimitives.WriteUInt32LittleEndian(text[8..], ecx);
        return System.Text.Encoding.ASCII.GetString(text);
    }

    [Fact]
    public void CpuidReportsTheVendorsStringsAndLeaves()
    {
        CpuModel intel = CpuModel.ForVendor(CpuVendor.Intel);
        CpuModel amd = CpuModel.ForVendor(CpuVendor.Amd);
        Assert.Equal("GenuineIntel", VendorString(intel));
        Assert.Equal("AuthenticAMD", VendorString(amd));

        // Intel: leaf 15H (TSC/crystal), family 6; AMD: no leaf 15H, family 17H, the vendor again in 8000_0000H.
        Assert.Equal(0x15u, intel.Query(0, 0, false).Eax);
        Assert.Equal(0xDu, amd.Query(0, 0, false).Eax);
        Assert.Equal((0u, 0u, 0u, 0u), amd.Query(0x15, 0, false));
        Assert.Equal(6u, (intel.Query(1, 0, false).Eax >> 8) & 0xF);
        uint amdSignature = amd.Query(1, 0, false).Eax;
        Assert.Equal(0x17u, ((amdSignature >> 8) & 0xF) + ((amdSignature >> 20) & 0xFF));
        Assert.Equal(amd.Query(0, 0, false).Ebx, amd.Query(0x8000_0000, 0, false).Ebx);
        Assert.Equal(0u, intel.Query(0x8000_0000, 0, false).Ebx);
        Assert.Equal(amdSignature, amd.Query(0x8000_0001, 0, false).Eax);

        // FCS/FDS deprecated (7.0:EBX[13]) only on Intel; misaligned SSE (8000_0001H:ECX[7]) only on AMD.
        Assert.NotEqual(0u, intel.Query(7, 0, false).Ebx & (1u << 13));
        Assert.Equal(0u, amd.Query(7, 0, false).Ebx & (1u << 13));
        Assert.Equal(0u, intel.Query(0x8000_0001, 0, false).Ecx & (1u << 7));
        Assert.NotEqual(0u, amd.Query(0x8000_0001, 0, false).Ecx & (1u << 7));
        Assert.False(intel.Has(CpuFeature.MisalignedSse));

        // AMD mirrors leaf 1's EDX (FPU, TSC, CMOV, MMX, FXSR, ...) in 8000_0001H:EDX.
        Assert.Equal(amd.Query(1, 0, false).Edx & 0x0183_F3FF, amd.Query(0x8000_0001, 0, false).Edx & 0x0183_F3FF);
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void FxsaveSavesTheX87PointersOnlyWithAPendingExceptionOnAmd(CpuVendor vendor)
    {
        using TestCpu t = LongMode(vendor);
        t.Memory.Write(Data, BitConverter.DoubleToUInt64Bits(1.5));
        byte[] code = t.Load(64, a =>
        {
            a.fninit();
            a.fld(__qword_ptr[Data]);
            a.fxsave64(__[Area]);
            a.hlt();
        });
        t.RunToHalt();
        ulong fip = t.Memory.Read<ulong>(Area + 8);
        ulong fdp = t.Memory.Read<ulong>(Area + 16);
        if (vendor == CpuVendor.Intel)
        {
            // SDM: FXSAVE stores the last non-control instruction's pointer whatever FSW.ES says.
            Assert.Equal(TestCpu.CodeAddress + 2, fip);
        }
        else
        {
            // APM: without a pending unmasked exception FOP, FIP and FDP are stored as zero.
            Assert.Equal(0UL, fip);
            Assert.Equal(0UL, fdp);
            Assert.Equal(0, t.Memory.Read<ushort>(Area + 6));
        }

        Assert.NotEmpty(code);
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void APendingExceptionSavesThePointersAndAmdTheSelectors(CpuVendor vendor)
    {
        using TestCpu t = LongMode(vendor);
        t.Memory.Write(Data, (ushort)0x37B); // ZE unmasked
        t.Load(64, a =>
        {
            a.fninit();
            a.fldcw(__word_ptr[Data]);
            a.fld1();
            a.fldz();
            a.fdivp(st1, st0); // 1 / 0: pending #MF (ES set)
            a.fxsave(__[Area]); // the 32-bit layout: FIP, FCS, FDP, FDS
            a.hlt();
        });
        t.RunToHalt();
        ushort fsw = t.Memory.Read<ushort>(Area + 2);
        Assert.NotEqual(0, fsw & 0x80);
        Assert.NotEqual(0u, t.Memory.Read<uint>(Area + 8)); // FIP of FDIVP
        Assert.Equal(0x6F9, t.Memory.Read<ushort>(Area + 6)); // DE F9
        ushort fcs = t.Memory.Read<ushort>(Area + 12);

        // Intel deprecates FCS/FDS (saved as zero); AMD saves the code segment selector.
        Assert.Equal(vendor == CpuVendor.Amd ? (ushort)0x08 : (ushort)0, fcs);
    }

    [Theory]
    [InlineData(CpuVendor.Intel, 0x0000_0000_0000_1111UL, 0xAB00_0000_0000_2222UL)] // FIP canonical (47), FDP whole
    [InlineData(CpuVendor.Amd, 0xFF00_0000_0000_1111UL, 0xFF00_0000_0000_2222UL)] // both sign-extended from bit 56
    public void Fxrstor64LoadsThePointersAsWideAsTheVendorKeepsThem(CpuVendor vendor, ulong fip, ulong fdp)
    {
        using TestCpu t = LongMode(vendor);
        var image = new byte[512];
        BinaryPrimitives.WriteUInt16LittleEndian(image, 0x37E); // IE unmasked ...
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(2), 0x81); // ... and pending: ES, so AMD saves the pointers
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(24), 0x1F80);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(8), 0xAB00_0000_0000_1111);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(16), 0xAB00_0000_0000_2222);
        t.Memory.Write(Area, image);
        t.Load(64, a =>
        {
            a.fxrstor64(__[Area]);
            a.fxsave64(__[Area + 0x1000]);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(fip, t.Memory.Read<ulong>(Area + 0x1000 + 8));
        Assert.Equal(fdp, t.Memory.Read<ulong>(Area + 0x1000 + 16));
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void AmdRecordsFopAndTheDataPointerForEveryX87Instruction(CpuVendor vendor)
    {
        using TestCpu t = LongMode(vendor);
        t.Memory.Write(Data, BitConverter.DoubleToUInt64Bits(1.5));
        t.Load(64, a =>
        {
            a.fninit();
            a.fld(__qword_ptr[Data]);
            a.fld1();
            a.fnstenv(__[Area]);
            a.hlt();
        });
        t.RunToHalt();
        uint fopAndFcs = t.Memory.Read<uint>(Area + 16);
        uint fdp = t.Memory.Read<uint>(Area + 20);
        if (vendor == CpuVendor.Amd)
        {
            // FLD1 (D9 E8) is the last instruction; FDP stays at the FLD's operand; FCS = CS.
            Assert.Equal(0x1E8u, fopAndFcs >> 16);
            Assert.Equal(0x08u, fopAndFcs & 0xFFFF);
            Assert.Equal((uint)Data, fdp);
        }
        else
        {
            // This Intel model changes FOP and FDP only on unmasked exceptions, and FCS/FDS are deprecated.
            Assert.Equal(0u, fopAndFcs);
            Assert.Equal(0u, fdp);
        }
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void XsaveReportsX87InUseAsEachVendorDoes(CpuVendor vendor)
    {
        using TestCpu t = LongMode(vendor);
        t.Load(64, a =>
        {
            a.fninit();
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.xsave64(__[Area]);
            a.fld1();
            a.fstp(st0);
            a.fninit();
            a.xsave64(__[Area + 0x1000]);
            a.hlt();
        });
        t.RunToHalt();
        ulong afterInit = t.Memory.Read<ulong>(Area + 512) & 1;
        ulong afterStaleRegister = t.Memory.Read<ulong>(Area + 0x1000 + 512) & 1;

        // Intel tracks XINUSE per instruction (FNINIT sets it); AMD reports x87 in use exactly when
        // the state differs from the initial one — FNINIT leaves the stale 1.0 in a register.
        Assert.Equal(vendor == CpuVendor.Intel ? 1UL : 0UL, afterInit);
        Assert.Equal(1UL, afterStaleRegister);
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void MisalignedSseModeExistsOnlyOnAmd(CpuVendor vendor)
    {
        using TestCpu t = LongMode(vendor);
        t.Memory.Write(Data, 0x1F80u | (1u << 17)); // MXCSR.MM
        t.Load(64, a =>
        {
            a.fxsave64(__[Area]);
            a.ldmxcsr(__dword_ptr[Data]);
            a.addps(xmm0, __xmmword_ptr[Data + 4]); // misaligned, not an explicitly aligned move
            a.hlt();
        });
        if (vendor == CpuVendor.Intel)
        {
            Assert.Equal((byte)ExceptionVector.GeneralProtection, RunToException(t).Vector); // LDMXCSR: reserved bit
            Assert.Equal(0xFFFFu, t.Memory.Read<uint>(Area + 28));
            return;
        }

        t.RunToHalt();
        Assert.Equal(0x2FFFFu, t.Memory.Read<uint>(Area + 28)); // MXCSR_MASK with MM
        Assert.Equal(0x1F80u | (1u << 17), t.Cpu.Mxcsr);

        // MOVAPS is explicitly aligned: #GP even in misaligned SSE mode.
        using TestCpu u = LongMode(vendor);
        u.Memory.Write(Data, 0x1F80u | (1u << 17));
        u.Load(64, a =>
        {
            a.ldmxcsr(__dword_ptr[Data]);
            a.movaps(xmm0, __xmmword_ptr[Data + 4]);
            a.hlt();
        });
        Assert.Equal((byte)ExceptionVector.GeneralProtection, RunToException(u).Vector);
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void ARepeCmpsThatFaultsMidWayKeepsTheVendorsFlagsAndSetsRf(CpuVendor vendor)
    {
        using TestCpu t = LongMode(vendor, limitedMapping: true);
        const ulong source = 0x1F_FFF0;
        t.Memory.Write(source, new byte[16]);
        t.Memory.Write(0x1F_FFFE, new byte[2]);
        t.Load(64, a =>
        {
            a.mov(rsi, source);
            a.mov(rdi, 0x1F_FFFEUL); // two equal bytes, then the unmapped 2 MiB page
            a.mov(ecx, 8);
            a.mov(eax, 1);
            a.cmp(eax, 2); // ZF = 0, CF = 1 before the compare
            a.repe.cmpsb();
            a.hlt();
        });
        CpuException e = RunToException(t);
        Assert.Equal((byte)ExceptionVector.PageFault, e.Vector);
        Assert.Equal(0x20_0000UL, e.FaultAddress);
        Assert.Equal(6UL, t.Cpu.GetRegister(1)); // two iterations completed
        ulong flags = t.Cpu.Rflags;

        // SDM (REP): "the EFLAGS value is restored to the state prior to the execution of the
        // instruction"; AMD keeps the flags of the last completed (equal) iteration.
        Assert.Equal(vendor == CpuVendor.Amd, (flags & RflagsBits.Zero) != 0);
        Assert.Equal(vendor == CpuVendor.Intel, (flags & RflagsBits.Carry) != 0);

        // Suspended after an iteration: RF is set on both, so the resumed instruction's breakpoint does not fire again.
        Assert.NotEqual(0UL, flags & RflagsBits.Resume);
    }

    [Theory]
    [InlineData(CpuVendor.Intel, 0x400000UL)]
    [InlineData(CpuVendor.Amd, 0x300000UL)]
    public void RepeCmpsbReportsTheVendorsFirstOperandsFault(CpuVendor vendor, ulong expected)
    {
        using TestCpu t = LongMode(vendor, limitedMapping: true);
        t.Load(64, a =>
        {
            a.mov(rsi, 0x300000UL);
            a.mov(rdi, 0x400000UL);
            a.mov(ecx, 4);
            a.repe.cmpsb();
            a.hlt();
        });
        Assert.Equal(expected, RunToException(t).FaultAddress);
    }

    [Theory]
    [InlineData(CpuVendor.Intel, 0xBCD1UL)] // the 48-bit a:b:a shifted (SDM: undefined)
    [InlineData(CpuVendor.Amd, 0xBCDAUL)] // the source rotated by count - 16 (APM: undefined; measured)
    public void ShldWithACountAboveTheOperandSize(CpuVendor vendor, ulong expected)
    {
        using TestCpu t = LongMode(vendor);
        t.Load(64, a =>
        {
            a.mov(eax, 0x1234);
            a.mov(ebx, 0xABCD);
            a.shld(ax, bx, 20);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(expected, t.Cpu.GetRegister(0) & 0xFFFF);
        Assert.Equal(0UL, t.Cpu.Rflags & RflagsBits.Carry);
    }

    [Theory]
    [InlineData(CpuVendor.Intel, false)]
    [InlineData(CpuVendor.Amd, true)]
    public void LoopeTakesItsConditionFromAnF2PrefixOnAmd(CpuVendor vendor, bool taken)
    {
        using TestCpu t = LongMode(vendor);
        t.Load(64, a =>
        {
            Label skip = a.CreateLabel();
            a.mov(ecx, 5);
            a.xor(eax, eax);
            a.cmp(eax, 1); // ZF = 0: LOOPE falls through, LOOPNE jumps
            a.db(0xF2);
            a.loope(skip);
            a.mov(edx, 1);
            a.hlt();
            a.Label(ref skip);
            a.mov(edx, 2);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(taken ? 2UL : 1UL, t.Cpu.GetRegister(2));
    }

    [Theory]
    [InlineData(CpuVendor.Intel)]
    [InlineData(CpuVendor.Amd)]
    public void AnOperandSizePrefixedNearReturnIs16BitOnlyOnAmd(CpuVendor vendor)
    {
        using TestCpu t = LongMode(vendor);
        t.Load(64, a =>
        {
            a.mov(rax, 0x1111_2222_0000_2000UL);
            a.push(rax);
            a.db(0x66, 0xC3); // o16 RET
        });
        t.Load(64, a => a.hlt(), 0x2000);
        if (vendor == CpuVendor.Intel)
        {
            // Intel ignores the prefix and pops 64 bits: a non-canonical return address, #GP.
            Assert.Equal((byte)ExceptionVector.GeneralProtection, RunToException(t).Vector);
            return;
        }

        // AMD pops 16 bits and zero-extends them into RIP.
        t.RunToHalt();
        Assert.Equal(0x2001UL, t.Cpu.Rip);
        Assert.Equal(TestCpu.StackTop - 6, t.Cpu.GetRegister(4));
    }
}
