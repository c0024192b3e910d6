using SharpVisor.Emulator.Platform;

namespace SharpVisor.Emulator.Tests.Platform;

public class MsiMessageTests
{
    [Fact]
    public void DecodesWhatLinuxWritesForAPhysicalFixedMsi()
    {
        // Linux's __irq_msi_compose_msg: 0xFEE00000 | dest << 12, data = vector (edge, fixed, assert).
        Assert.True(MsiMessage.TryDecode(0xFEE0_1000, 0x0000_4031, out ApicMessage message, out string? error));
        Assert.Null(error);
        Assert.Equal(0x31, message.Vector);
        Assert.Equal(ApicDeliveryMode.Fixed, message.DeliveryMode);
        Assert.False(message.LogicalDestination);
        Assert.Equal(1u, message.Destination);
        Assert.False(message.LevelTriggered);
        Assert.False(message.IsIpi);
    }

    [Fact]
    public void RedirectionHintWithLogicalModeArbitratesByPriority()
    {
        (ulong address, uint data) = MsiMessage.Encode(0x03, 0x52, logical: true, redirectionHint: true);
        Assert.Equal(0xFEE0_300CUL, address);
        Assert.True(MsiMessage.TryDecode(address, data, out ApicMessage message, out _));
        Assert.Equal(ApicDeliveryMode.LowestPriority, message.DeliveryMode);
        Assert.True(message.LogicalDestination);
        Assert.Equal(3u, message.Destination);
    }

    [Fact]
    public void DecodesDeliveryModeAndTrigger()
    {
        Assert.True(MsiMessage.TryDecode(0xFEE0_0000, (4u << 8) | MsiMessage.DataLevelTriggered | MsiMessage.DataAssert, out ApicMessage nmi, out _));
        Assert.Equal(ApicDeliveryMode.Nmi, nmi.DeliveryMode);
        Assert.True(nmi.LevelTriggered);
        Assert.True(nmi.Assert);
    }

    [Theory]
    [InlineData(0xFED0_0000UL, 0x31u)]
    [InlineData(0x1_FEE0_0000UL, 0x31u)]
    [InlineData(0UL, 0x31u)]
    [InlineData(0xFEE0_0000UL, 0x331u)] // reserved delivery mode 3
    [InlineData(0xFEE0_0000UL, 0x631u)] // STARTUP is not an MSI
    public void RejectsMessagesThatAreNotInterrupts(ulong address, uint data)
    {
        Assert.False(MsiMessage.TryDecode(address, data, out _, out string? error));
        Assert.False(string.IsNullOrEmpty(error));
    }
}
