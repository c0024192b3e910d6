using SharpVisor.Emulator.Accelerator;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>The AMD-only MSRs Linux touches on an AuthenticAMD vCPU, answered as KVM answers them.</summary>
public sealed class AmdMsrsTests
{
    [Fact]
    public void HwcrKeepsOnlyMcStatusWriteEnable()
    {
        var msrs = new AmdMsrs();
        Assert.True(msrs.TryRead(AmdMsrs.Hwcr, out ulong value));
        Assert.Equal(0UL, value);

        Assert.True(msrs.TryWrite(AmdMsrs.Hwcr, (1UL << 18) | (1UL << 3))); // bit 3 is ignored
        Assert.True(msrs.TryRead(AmdMsrs.Hwcr, out value));
        Assert.Equal(1UL << 18, value);

        Assert.False(msrs.TryWrite(AmdMsrs.Hwcr, 1UL << 24)); // not implemented: #GP
    }

    [Theory]
    [InlineData(AmdMsrs.NorthBridgeConfig)]
    [InlineData(AmdMsrs.MmioConfigBase)]
    public void NorthBridgeMsrsReadZeroAndIgnoreWrites(uint msr)
    {
        var msrs = new AmdMsrs();
        Assert.True(msrs.TryWrite(msr, 1UL << 46));
        Assert.True(msrs.TryRead(msr, out ulong value));
        Assert.Equal(0UL, value);
    }

    [Fact]
    public void OtherMsrsAreNotAmds()
    {
        var msrs = new AmdMsrs();
        Assert.False(AmdMsrs.Handles(0x1A0));
        Assert.False(msrs.TryRead(0xC001_0016, out _));
        Assert.False(msrs.TryWrite(0xC001_0016, 0));
    }
}
