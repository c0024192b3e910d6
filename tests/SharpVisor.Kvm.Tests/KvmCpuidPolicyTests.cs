using SharpVisor.Interop.Kvm;

namespace SharpVisor.Kvm.Tests;

/// <summary>The CPUID policy as a pure function of what KVM supports.</summary>
public class KvmCpuidPolicyTests
{
    private static readonly KvmCpuidEntry2[] s_supported =
    [
        new() { Function = 0x0, Eax = 0x16, Ebx = 0x756E_6547 },
        new() { Function = 0x1, Eax = 0x5_0657, Ebx = 0x0102_0800, Ecx = 0x0120_2000, Edx = 0x0F8B_FBFF },
        new() { Function = 0x4, Index = 0, Flags = KvmCpuidEntry2.FlagSignificantIndex, Eax = 0x0400_0121 },
        new() { Function = 0x4, Index = 4, Flags = KvmCpuidEntry2.FlagSignificantIndex, Eax = 0 },
        new() { Function = 0xA, Eax = 0 , Ebx = 0x7F, Edx = 0x1234 },
        new() { Function = 0xB, Index = 0, Flags = KvmCpuidEntry2.FlagSignificantIndex, Edx = 1 },
        new() { Function = 0x4000_0001, Eax = 0x0100_7EFB },
    ];

    [Fact]
    public void Leaf1CarriesTheHypervisorBitAndThisVcpusApicId()
    {
        KvmCpuidEntry2 leaf1 = Leaf(KvmCpuidPolicy.Apply(s_supported, apicId: 3, vcpuCount: 4), 0x1);

        Assert.NotEqual(0u, leaf1.Ecx & KvmCpuidPolicy.HypervisorBit);
        Assert.Equal(3u, leaf1.Ebx >> 24);
        Assert.Equal(4u, (leaf1.Ebx >> 16) & 0xFF);
        Assert.Equal(0x0800u, leaf1.Ebx & 0xFFFF);
        Assert.NotEqual(0u, leaf1.Edx & KvmCpuidPolicy.HttBit);
        Assert.Equal(s_supported[1].Eax, leaf1.Eax);
    }

    [Fact]
    public void SingleVcpuHasNoHyperThreadingBit()
    {
        KvmCpuidEntry2 leaf1 = Leaf(KvmCpuidPolicy.Apply(s_supported, apicId: 0, vcpuCount: 1), 0x1);

        Assert.Equal(0u, leaf1.Edx & KvmCpuidPolicy.HttBit);
        Assert.Equal(1u, (leaf1.Ebx >> 16) & 0xFF);
    }

    [Fact]
    public void ExtendedTopologyDescribesTheMachineWithTheX2ApicIdOnEverySubleaf()
    {
        KvmCpuidEntry2[] topology = KvmCpuidPolicy.Apply(s_supported, apicId: 2, vcpuCount: 3).Where(e => e.Function == 0xB).OrderBy(e => e.Index).ToArray();

        Assert.Equal([0u, 1u, 2u], topology.Select(e => e.Index));
        Assert.All(topology, e => Assert.Equal(2u, e.Edx));
        Assert.All(topology, e => Assert.Equal(KvmCpuidEntry2.FlagSignificantIndex, e.Flags));
        Assert.Equal(1u, (topology[0].Ecx >> 8) & 0xFF);
        Assert.Equal(1u, topology[0].Ebx);
        Assert.Equal(2u, (topology[1].Ecx >> 8) & 0xFF);
        Assert.Equal(3u, topology[1].Ebx);
        Assert.Equal(2u, topology[1].Eax);
        Assert.Equal(0u, (topology[2].Ecx >> 8) & 0xFF);
    }

    [Fact]
    public void CacheLeafCoresAgreeWithTheVcpuCountAndEmptySubleavesStayEmpty()
    {
        KvmCpuidEntry2[] leaf4 = KvmCpuidPolicy.Apply(s_supported, apicId: 0, vcpuCount: 4).Where(e => e.Function == 0x4).OrderBy(e => e.Index).ToArray();

        Assert.Equal(3u, leaf4[0].Eax >> 26);
        Assert.Equal(0x121u, leaf4[0].Eax & 0x3FF_FFFF);
        Assert.Equal(0u, leaf4[1].Eax);
    }

    [Fact]
    public void AbsentPmuIsHiddenAndAPresentOneKept()
    {
        Assert.Equal(default, Leaf(KvmCpuidPolicy.Apply(s_supported, 0, 1), 0xA) with { Function = 0 });

        KvmCpuidEntry2[] withPmu = s_supported.Select(e => e.Function == 0xA ? e with { Eax = 0x0730_0402 } : e).ToArray();
        KvmCpuidEntry2 pmu = Leaf(KvmCpuidPolicy.Apply(withPmu, 0, 1), 0xA);
        Assert.Equal(0x0730_0402u, pmu.Eax);
        Assert.Equal(0x7Fu, pmu.Ebx);
    }

    [Fact]
    public void KvmSignatureLeafIsAddedWhenMissingAndKeptWhenPresent()
    {
        KvmCpuidEntry2 signature = Leaf(KvmCpuidPolicy.Apply(s_supported, 0, 1), KvmCpuidPolicy.KvmSignatureLeaf);
        byte[] text = [.. BitConverter.GetBytes(signature.Ebx), .. BitConverter.GetBytes(signature.Ecx), .. BitConverter.GetBytes(signature.Edx)];
        Assert.Equal("KVMKVMKVM\0\0\0", System.Text.Encoding.ASCII.GetString(text));
        Assert.Equal(KvmCpuidPolicy.KvmFeaturesLeaf, signature.Eax);

        KvmCpuidEntry2[] withSignature = [.. s_supported, new() { Function = KvmCpuidPolicy.KvmSignatureLeaf, Eax = 0x4000_0001, Ebx = 1, Ecx = 2, Edx = 3 }];
        KvmCpuidEntry2[] applied = KvmCpuidPolicy.Apply(withSignature, 0, 1);
        Assert.Equal(1u, Assert.Single(applied, e => e.Function == KvmCpuidPolicy.KvmSignatureLeaf).Ebx);
        Assert.Equal(0x0100_7EFBu, Leaf(applied, KvmCpuidPolicy.KvmFeaturesLeaf).Eax);
    }

    [Theory]
    [InlineData(-1, 1)]
    [InlineData(255, 256)]
    [InlineData(0, 0)]
    public void OutOfRangeIdsAndCountsAreRejected(int apicId, int vcpuCount)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => KvmCpuidPolicy.Apply(s_supported, apicId, vcpuCount));
    }

    private static KvmCpuidEntry2 Leaf(KvmCpuidEntry2[] entries, uint function) => Assert.Single(entries, e => e.Function == function);
}
