using SharpVisor.Emulator.Mmu;

namespace SharpVisor.Emulator.Tests.Mmu;

// The CPU core has its own IMmu and TlbEntry in SharpVisor.Emulator; these tests mean the MMU's.
using IMmu = SharpVisor.Emulator.Mmu.IMmu;
using TlbEntry = SharpVisor.Emulator.Mmu.TlbEntry;

internal static class MmuAssert
{
    public static void Ram(Translation t, ulong physical)
    {
        Assert.True(t.IsRam, $"expected RAM 0x{physical:x}, got {t}");
        Assert.Equal(physical, t.PhysicalAddress);
        Assert.NotEqual(0, t.HostAddress);
    }

    public static void Fault(Translation t, uint errorCode, ulong linear)
    {
        Assert.True(t.IsPageFault, $"expected #PF(0x{errorCode:x}), got {t}");
        Assert.Equal(errorCode, (uint)t.Fault.ErrorCode);
        Assert.Equal(linear, t.Fault.Address);
    }

    public static void Mmio(Translation t, ulong physical)
    {
        Assert.True(t.IsMmio, $"expected MMIO 0x{physical:x}, got {t}");
        Assert.Equal(physical, t.PhysicalAddress);
    }
}
