using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Platform;
using SharpVisor.Emulator.Tests.Platform;
using SharpVisor.Memory;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>What the emulated CPU asks of the platform: MSRs, the TSC, CPUID additions and CR8.</summary>
public sealed class EmulatorCpuPlatformTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.CreateRam(2 << 20);
    private readonly ManualTimeProvider _clock = new();
    private readonly SoftwarePlatform _platform;
    private readonly X86Cpu _cpu;

    public EmulatorCpuPlatformTests()
    {
        _platform = new SoftwarePlatform(_memory, 4, new PlatformTimeBase(_clock));
        _cpu = new X86Cpu(new PhysicalMemory(_memory));
    }

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void Leaf1CarriesTheApicIdAndTheHypervisorX2ApicAndTscDeadlineBits()
    {
        var platform = new EmulatorCpuPlatform(_platform, 2, 4);
        (uint eax, uint ebx, uint ecx, uint edx) = EmulatorCpuModel.Create(2_000_000_000).Query(1, 0, osxsave: false);

        platform.AdjustCpuid(_cpu, 1, 0, ref eax, ref ebx, ref ecx, ref edx);

        Assert.Equal(2u, ebx >> 24);
        Assert.Equal(0x0003_06A9u, eax);
        Assert.NotEqual(0u, ecx & (1u << 31)); // hypervisor
        Assert.NotEqual(0u, ecx & (1u << 21)); // x2APIC
        Assert.NotEqual(0u, ecx & (1u << 24)); // TSC deadline
        Assert.NotEqual(0u, ecx & (1u << 0)); // SSE3 from the model survives
        Assert.NotEqual(0u, edx & (1u << 9)); // APIC
        Assert.NotEqual(0u, edx & (1u << 6)); // PAE from the accelerator's model
    }

    [Fact]
    public void TheKvmHypervisorLeavesAdvertiseKvmclock()
    {
        var platform = new EmulatorCpuPlatform(_platform, 0, 4);
        uint eax = 0, ebx = 0, ecx = 0, edx = 0;

        platform.AdjustCpuid(_cpu, 0x4000_0000, 0, ref eax, ref ebx, ref ecx, ref edx);
        Assert.Equal("KVMKVMKVM\0\0\0", Signature(ebx, ecx, edx));
        Assert.Equal(0x4000_0001u, eax);

        eax = ebx = ecx = edx = 0;
        platform.AdjustCpuid(_cpu, 0x4000_0001, 0, ref eax, ref ebx, ref ecx, ref edx);
        Assert.Equal(KvmCpuid.Features, eax);
        Assert.NotEqual(0u, eax & KvmCpuid.FeatureClockSource2);
    }

    [Fact]
    public void Leaf0xBDescribesOneThreadPerCoreAndEveryVcpuAsACore()
    {
        var platform = new EmulatorCpuPlatform(_platform, 3, 4);

        uint eax = 0, ebx = 0, ecx = 0, edx = 0;
        platform.AdjustCpuid(_cpu, 0xB, 0, ref eax, ref ebx, ref ecx, ref edx);
        Assert.Equal((0u, 1u, 0x100u, 3u), (eax, ebx, ecx, edx));

        platform.AdjustCpuid(_cpu, 0xB, 1, ref eax, ref ebx, ref ecx, ref edx);
        Assert.Equal((2u, 4u, 0x201u, 3u), (eax, ebx, ecx, edx));

        platform.AdjustCpuid(_cpu, 0xB, 2, ref eax, ref ebx, ref ecx, ref edx);
        Assert.Equal((0u, 0u, 2u, 3u), (eax, ebx, ecx, edx));
    }

    [Fact]
    public void PlatformMsrsReachTheLocalApicAndKvmclock()
    {
        var bsp = new EmulatorCpuPlatform(_platform, 0, 4);
        var ap = new EmulatorCpuPlatform(_platform, 1, 4);

        Assert.True(bsp.TryReadMsr(_cpu, LocalApic.MsrApicBase, out ulong bspBase));
        Assert.True(ap.TryReadMsr(_cpu, LocalApic.MsrApicBase, out ulong apBase));
        Assert.Equal(0xFEE0_0900UL, bspBase);
        Assert.Equal(0xFEE0_0800UL, apBase);

        // x2APIC mode through IA32_APIC_BASE, then the x2APIC ID register (MSR 0x802).
        Assert.True(ap.TryWriteMsr(_cpu, LocalApic.MsrApicBase, apBase | LocalApic.ApicBaseX2ApicEnable));
        Assert.True(ap.TryReadMsr(_cpu, 0x802, out ulong x2ApicId));
        Assert.Equal(1UL, x2ApicId);
        Assert.False(bsp.TryReadMsr(_cpu, 0x802, out _)); // the BSP is still in xAPIC mode: #GP

        Assert.True(ap.TryWriteMsr(_cpu, KvmClock.MsrSystemTimeNew, 0x1000 | 1));
        Assert.True(_platform.KvmClock.IsEnabled(1));
        Assert.False(_platform.KvmClock.IsEnabled(0));
    }

    [Fact]
    public void MtrrsAndMiscEnableLookAsABiosLeftThem()
    {
        var platform = new EmulatorCpuPlatform(_platform, 0, 4);

        Assert.True(platform.TryReadMsr(_cpu, VcpuMsrs.MtrrDefType, out ulong defType));
        Assert.Equal(0x806UL, defType); // enabled, write-back
        Assert.True(platform.TryReadMsr(_cpu, VcpuMsrs.MtrrCapabilities, out ulong capabilities));
        Assert.Equal(8UL, capabilities & 0xFF);
        Assert.False(platform.TryWriteMsr(_cpu, VcpuMsrs.MtrrCapabilities, 0));
        Assert.True(platform.TryReadMsr(_cpu, VcpuMsrs.MiscEnable, out ulong misc));
        Assert.Equal(1UL, misc & 1);

        Assert.True(platform.TryWriteMsr(_cpu, VcpuMsrs.MtrrPhysBase0 + 1, 0xFFF_C000_0800));
        Assert.True(platform.TryReadMsr(_cpu, VcpuMsrs.MtrrPhysBase0 + 1, out ulong mask));
        Assert.Equal(0xFFF_C000_0800UL, mask);
        Assert.False(platform.TryWriteMsr(_cpu, VcpuMsrs.MtrrDefType, 1UL << 20)); // reserved bit

        Assert.False(platform.TryReadMsr(_cpu, 0x1234_5678, out _));
        Assert.False(platform.TryWriteMsr(_cpu, 0x1234_5678, 0));
    }

    [Fact]
    public void TheTscIsThePlatformClockAndStopsWhileTheMachineIsPaused()
    {
        var platform = new EmulatorCpuPlatform(_platform, 0, 4);
        ulong start = platform.ReadTsc();

        _clock.AdvanceMilliseconds(1);
        Assert.Equal(start + 2_000_000, platform.ReadTsc()); // 2 GHz

        _platform.Pause();
        _clock.AdvanceMilliseconds(50);
        Assert.Equal(start + 2_000_000, platform.ReadTsc());

        _platform.Resume();
        _clock.AdvanceMilliseconds(1);
        Assert.Equal(start + 4_000_000, platform.ReadTsc());
    }

    [Fact]
    public void Cr8IsTheTaskPriorityOfThisVcpusLocalApic()
    {
        var platform = new EmulatorCpuPlatform(_platform, 1, 4);

        platform.WriteCr8(_cpu, 0x7);

        Assert.Equal(0x70u, _platform.IrqChip.GetLocalApic(1).TaskPriority);
        Assert.Equal(0u, _platform.IrqChip.GetLocalApic(0).TaskPriority);
        Assert.Equal(0x7UL, platform.ReadCr8(_cpu));

        _platform.IrqChip.GetLocalApic(1).TaskPriority = 0x5F;
        Assert.Equal(0x5UL, platform.ReadCr8(_cpu));
    }

    private static string Signature(uint ebx, uint ecx, uint edx)
    {
        byte[] bytes = [.. BitConverter.GetBytes(ebx), .. BitConverter.GetBytes(ecx), .. BitConverter.GetBytes(edx)];
        return System.Text.Encoding.ASCII.GetString(bytes);
    }
}
