using SharpVisor.Memory;

namespace SharpVisor.Memory.Tests;

public sealed class DirtyPageLogTests
{
    [Fact]
    public void MarksAreFetchedOnceInMemoryFileOrder()
    {
        // 3 GiB + 8 KiB: two pages above 4 GiB come after the low region's pages.
        using GuestMemory memory = GuestMemory.CreateRam(GuestMemory.MmioHoleStart + 0x2000);
        DirtyPageLog log = memory.DirtyLog!;
        Assert.Equal((GuestMemory.MmioHoleStart / 4096) + 2, log.PageCount);

        log.Mark(0x1FFF, 2); // straddles pages 1 and 2
        memory.Write(GuestMemory.HighMemoryStart + 0x1000, [1, 2, 3]); // device DMA
        log.Mark(GuestMemory.MmioHoleStart + 0x10, 4); // the MMIO hole: no RAM, no mark
        ulong[] pages = log.FetchAndClear();

        ulong high = log.PageCount - 1;
        Assert.Equal([1UL, 2UL, high], DirtyPageLog.PagesIn(pages).ToArray());
        Assert.Equal(GuestMemory.HighMemoryStart + 0x1000, log.AddressOf(high));
        Assert.Equal(0, DirtyPageLog.CountPages(log.FetchAndClear()));
    }

    [Fact]
    public void HostAddressesAndBitmapsMarkTheirPages()
    {
        using GuestMemory memory = GuestMemory.CreateRam(16UL << 20);
        DirtyPageLog log = memory.DirtyLog!;
        Assert.True(memory.TryTranslate(0x5123, 1, out nint host));
        log.MarkHost(host);
        log.MarkHost(host + (nint)(64UL << 20)); // outside RAM: ignored
        log.MarkBitmap(64, [0b101UL]);
        Assert.Equal([5UL, 64UL, 66UL], DirtyPageLog.PagesIn(log.FetchAndClear()).ToArray());
        log.MarkAll();
        Assert.Equal(4096, DirtyPageLog.CountPages(log.FetchAndClear()));
    }
}
