using SharpVisor.Host.Vmm;

namespace SharpVisor.Embedding.Tests;

/// <summary>The embedding API fills the one machine-configuration model: a disk's path, read-only flag and id arrive whole.</summary>
public sealed class DiskOptionsTests
{
    [Fact]
    public void ADiskKeepsPathReadOnlyAndId()
    {
        Assert.Equal(new DiskConfiguration("/srv/data.img", true, "data0"), VirtualMachine.ToConfiguration(new DiskOptions("/srv/data.img", ReadOnly: true, Id: "data0")));
        Assert.Equal(new DiskConfiguration("/srv/root.img"), VirtualMachine.ToConfiguration(new DiskOptions("/srv/root.img")));
    }
}
