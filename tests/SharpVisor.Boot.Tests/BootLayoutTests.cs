namespace SharpVisor.Boot.Tests;

public sealed class BootLayoutTests
{
    [Fact]
    public void BootStructuresDoNotOverlapAndStayInConventionalMemory()
    {
        IReadOnlyList<BootPlacement> regions = BootLayout.Regions;
        Assert.True(regions.Count >= 8);
        for (int i = 0; i < regions.Count; i++)
        {
            Assert.True(regions[i].Address >= 0x500, $"{regions[i].Name} overlaps the real-mode IVT/BDA");
            Assert.True(regions[i].End <= E820Map.EbdaStart, $"{regions[i].Name} reaches into the EBDA");
            for (int j = i + 1; j < regions.Count; j++)
            {
                Assert.False(regions[i].Overlaps(regions[j].Address, regions[j].Size), $"{regions[i].Name} overlaps {regions[j].Name}");
            }
        }
    }

    [Fact]
    public void PageTablesAndBootInfoArePageAligned()
    {
        Assert.Equal(0UL, BootLayout.Pml4Address % 0x1000);
        Assert.Equal(0UL, BootLayout.PdptAddress % 0x1000);
        Assert.Equal(0UL, BootLayout.PageDirectoryAddress % 0x1000);
        Assert.Equal(0UL, BootLayout.ZeroPageAddress % 0x1000);
        Assert.Equal(BootLayout.IdentityMappedBytes, (ulong)BootLayout.PageDirectoryCount * 512 * IdentityPageTables.LargePageSize);
    }
}
