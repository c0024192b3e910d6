using Iced.Intel;
using SharpVisor.Machine;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// XSAVE/XRSTOR/XGETBV/XSETBV rules the differential suite cannot reach from user mode on the
/// host (CPL 0, XCR0 values other than the host's, CR4.OSXSAVE clear), and CPUID leaf 0xD.
/// </summary>
public sealed class XsaveTests
{
    private const ulong Area = 0x10000;
    private const int HeaderOffset = 512;

    private static TestCpu LongModeCpu(bool osxsave = true, int cpl = 0)
    {
        var t = new TestCpu();
        t.EnterLongMode(cpl);
        if (osxsave)
        {
            VcpuState state = t.Cpu.GetState();
            state.Cr4 |= 1UL << 18;
            t.Cpu.SetState(state);
            t.Cpu.Xcr0 = CpuModel.SupportedXcr0; // as the OS sets it up (RESET leaves x87 only)
        }

        return t;
    }

    private static CpuException RunToException(TestCpu t)
    {
        CpuRunResult result = t.Cpu.Run(1000);
        Assert.True(result.Reason == CpuStopReason.Exception, $"expected an exception, got {result}");
        return result.Exception!;
    }

    [Fact]
    public void XgetbvWithoutOsxsaveIsUndefined()
    {
        using TestCpu t = LongModeCpu(osxsave: false);
        t.Load(64, a =>
        {
            a.xor(ecx, ecx);
            a.xgetbv();
            a.hlt();
        });
        Assert.Equal((byte)ExceptionVector.InvalidOpcode, RunToException(t).Vector);
    }

    [Fact]
    public void XsetbvSetsXcr0AndXgetbvReadsIt()
    {
        using TestCpu t = LongModeCpu();
        t.Load(64, a =>
        {
            a.xor(ecx, ecx);
            a.xor(edx, edx);
            a.mov(eax, 1);
            a.xsetbv();
            a.mov(eax, 0xFFFF);
            a.xgetbv();
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(1UL, t.Cpu.Xcr0);
        Assert.Equal(1UL, t.Cpu.GetRegister(0));
        Assert.Equal(0UL, t.Cpu.GetRegister(2));
    }

    [Theory]
    [InlineData(0u, 0u, 0u)] // x87 must stay enabled
    [InlineData(2u, 0u, 0u)]
    [InlineData(7u, 0u, 0u)] // AVX is not supported
    [InlineData(3u, 1u, 0u)] // an unsupported high component
    [InlineData(3u, 0u, 1u)] // only XCR0 exists
    public void XsetbvRejectsInvalidValues(uint eaxValue, uint edxValue, uint ecxValue)
    {
        using TestCpu t = LongModeCpu();
        t.Load(64, a =>
        {
            a.mov(eax, eaxValue);
            a.mov(edx, edxValue);
            a.mov(ecx, ecxValue);
            a.xsetbv();
            a.hlt();
        });
        CpuException e = RunToException(t);
        Assert.Equal((byte)ExceptionVector.GeneralProtection, e.Vector);
        Assert.Equal(0UL, e.ErrorCode ?? ulong.MaxValue);
        Assert.Equal(CpuModel.SupportedXcr0 & 1, t.Cpu.Xcr0 & 1);
    }

    [Fact]
    public void XsetbvOutsideRing0IsGeneralProtection()
    {
        using TestCpu t = LongModeCpu(cpl: 3);
        t.Load(64, a =>
        {
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.xor(ecx, ecx);
            a.xsetbv();
            a.hlt();
        });
        Assert.Equal((byte)ExceptionVector.GeneralProtection, RunToException(t).Vector);
    }

    [Fact]
    public void XsaveWritesOnlyEnabledComponentsAndTheirXstateBits()
    {
        using TestCpu t = LongModeCpu();
        byte[] sentinel = new byte[CpuModel.XsaveAreaSize];
        sentinel.AsSpan().Fill(0xA5);
        t.Memory.Write(Area, sentinel);
        t.Cpu.SetXmm(3, UInt128.MaxValue);
        t.Load(64, a =>
        {
            a.fld1(); // the x87 component is in use
            a.xor(ecx, ecx);
            a.xor(edx, edx);
            a.mov(eax, 1);
            a.xsetbv(); // XCR0 = x87 only
            a.mov(eax, 3); // ask for x87 and SSE: RFBM = XCR0 & 3 = x87
            a.mov(edi, (uint)Area);
            a.xsave(__[rdi]);
            a.hlt();
        });
        t.RunToHalt();
        byte[] image = new byte[CpuModel.XsaveAreaSize];
        t.Memory.Read(Area, image);
        Assert.Equal(0x037F, BitConverter.ToUInt16(image, 0)); // FCW saved
        Assert.Equal(0xA5A5A5A5u, BitConverter.ToUInt32(image, 24)); // MXCSR not (SSE not requested)
        Assert.All(image.AsSpan(160, 256).ToArray(), b => Assert.Equal(0xA5, b)); // XMM area untouched
        ulong xstateBv = BitConverter.ToUInt64(image, HeaderOffset);
        Assert.Equal((0xA5A5A5A5A5A5A5A5UL & ~1UL) | 1UL, xstateBv); // only bit 0 written
        Assert.Equal(0xA5A5A5A5A5A5A5A5UL, BitConverter.ToUInt64(image, HeaderOffset + 8));
    }

    [Fact]
    public void XrstorOfAnEmptyXstateInitializesComponentsButLoadsMxcsr()
    {
        using TestCpu t = LongModeCpu();
        byte[] image = new byte[CpuModel.XsaveAreaSize];
        BitConverter.TryWriteBytes(image.AsSpan(0), (ushort)0x0000); // would unmask every x87 exception if loaded
        BitConverter.TryWriteBytes(image.AsSpan(24), 0x3F80u); // MXCSR with RC = down
        image.AsSpan(160, 256).Fill(0x77);
        t.Memory.Write(Area, image); // XSTATE_BV = 0
        t.Cpu.SetXmm(5, 12345);
        t.Load(64, a =>
        {
            a.fldpi();
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.mov(edi, (uint)Area);
            a.xrstor(__[rdi]);
            a.fnstcw(__word_ptr[rdi + 600]);
            a.fnstsw(ax);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(0x037Fu, t.Memory.Read<ushort>(Area + 600));
        Assert.Equal(0UL, t.Cpu.GetRegister(0) & 0x3800); // TOP = 0: the pushed value is gone
        Assert.Equal(UInt128.Zero, t.Cpu.GetXmm(5));
        Assert.Equal(0x3F80u, t.Cpu.Mxcsr);
    }

    [Fact]
    public void XsaveAfterInitializingXrstorReportsComponentsNotInUse()
    {
        using TestCpu t = LongModeCpu();
        t.Memory.Write(Area, new byte[CpuModel.XsaveAreaSize]);
        t.Load(64, a =>
        {
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.mov(edi, (uint)Area);
            a.xrstor(__[rdi]); // XSTATE_BV = 0: both components initialized
            a.xsave(__[rdi]);
            a.pxor(xmm0, xmm0); // SSE in use again
            a.xsave(__[rdi + 0x400]);
            a.hlt();
        });
        t.RunToHalt();
        Assert.Equal(0UL, t.Memory.Read<ulong>(Area + HeaderOffset));
        Assert.Equal(2UL, t.Memory.Read<ulong>(Area + 0x400 + HeaderOffset));
    }

    [Theory]
    [InlineData(2UL, 0UL)] // SSE enabled in XSTATE_BV but not in XCR0 (XCR0 = x87 here)
    [InlineData(1UL, 1UL << 63)] // the compacted form (XSAVEC is not advertised)
    [InlineData(1UL, 1UL)] // a reserved XCOMP_BV bit
    public void XrstorRejectsInvalidHeaders(ulong xstateBv, ulong xcompBv)
    {
        using TestCpu t = LongModeCpu();
        byte[] image = new byte[CpuModel.XsaveAreaSize];
        BitConverter.TryWriteBytes(image.AsSpan(0), (ushort)0x037F);
        BitConverter.TryWriteBytes(image.AsSpan(24), 0x1F80u);
        BitConverter.TryWriteBytes(image.AsSpan(HeaderOffset), xstateBv);
        BitConverter.TryWriteBytes(image.AsSpan(HeaderOffset + 8), xcompBv);
        t.Memory.Write(Area, image);
        t.Load(64, a =>
        {
            a.xor(ecx, ecx);
            a.xor(edx, edx);
            a.mov(eax, 1);
            a.xsetbv();
            a.mov(eax, 3);
            a.mov(edi, (uint)Area);
            a.xrstor(__[rdi]);
            a.hlt();
        });
        CpuException e = RunToException(t);
        Assert.Equal((byte)ExceptionVector.GeneralProtection, e.Vector);
    }

    [Fact]
    public void XsaveNeedsA64ByteAlignedArea()
    {
        using TestCpu t = LongModeCpu();
        t.Load(64, a =>
        {
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.mov(edi, (uint)Area + 16);
            a.xsave(__[rdi]);
            a.hlt();
        });
        Assert.Equal((byte)ExceptionVector.GeneralProtection, RunToException(t).Vector);
    }

    [Fact]
    public void XsaveWithTaskSwitchedIsDeviceNotAvailable()
    {
        using TestCpu t = LongModeCpu();
        VcpuState state = t.Cpu.GetState();
        state.Cr0 |= 1UL << 3; // CR0.TS
        t.Cpu.SetState(state);
        t.Load(64, a =>
        {
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.mov(edi, (uint)Area);
            a.xsave(__[rdi]);
            a.hlt();
        });
        Assert.Equal((byte)ExceptionVector.DeviceNotAvailable, RunToException(t).Vector);
    }

    [Fact]
    public void XsaveoptIsNotAdvertisedAndRaisesInvalidOpcode()
    {
        using TestCpu t = LongModeCpu();
        Assert.Equal(0u, CpuModel.Default.Query(0xD, 1, osxsave: true).Eax);
        t.Load(64, a =>
        {
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.mov(edi, (uint)Area);
            a.xsaveopt(__[rdi]);
            a.hlt();
        });
        Assert.Equal((byte)ExceptionVector.InvalidOpcode, RunToException(t).Vector);
    }

    [Fact]
    public void CpuidLeafDescribesTheImplementedXsaveArea()
    {
        CpuModel model = CpuModel.Default;
        (uint eax, uint ebx, uint ecx, uint edx) = model.Query(0xD, 0, osxsave: true);
        Assert.Equal(CpuModel.SupportedXcr0, ((ulong)edx << 32) | eax);
        Assert.Equal(CpuModel.XsaveAreaSize, ebx);
        Assert.Equal(CpuModel.XsaveAreaSize, ecx);
        Assert.Equal((0u, 0u, 0u, 0u), model.Query(0xD, 2, osxsave: true));
        Assert.NotEqual(0u, model.Query(1, 0, osxsave: true).Ecx & (1u << 27));
        Assert.Equal(0u, model.Query(1, 0, osxsave: false).Ecx & (1u << 27));
        Assert.NotEqual(0u, model.Query(1, 0, osxsave: false).Ecx & (1u << 26));
    }
}
