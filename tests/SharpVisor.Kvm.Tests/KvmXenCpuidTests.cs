using SharpVisor.Interop.Kvm;
using SharpVisor.Machine.Hypervisor;
using SharpVisor.Memory;
using SharpVisor.Xen;

namespace SharpVisor.Kvm.Tests;

/// <summary>The hypervisor CPUID leaves of a Xen guest on KVM: Xen's at 0x40000000, KVM's moved to 0x40000100 (QEMU's layout).</summary>
public class KvmXenCpuidTests
{
    [Fact]
    public void KvmsLeavesMoveUpAndXensTakeTheFirstRange()
    {
        KvmCpuidEntry2[] kvm =
        [
            new() { Function = 0, Eax = 0xD, Ebx = 0x756E_6547 },
            new() { Function = 0x4000_0000, Eax = 0x4000_0001, Ebx = 0x4B4D_564B, Ecx = 0x564B_4D56, Edx = 0x4D },
            new() { Function = 0x4000_0001, Eax = 0x0100_7AFB },
            new() { Function = 0x4000_0105, Eax = 0xBAD }, // a stray leaf where KVM's must go
            new() { Function = 0x8000_0000, Eax = 0x8000_0008 },
        ];
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        using var domain = new XenDomain(memory, new XenDomainOptions { VcpuCount = 2 });

        KvmCpuidEntry2[] merged = KvmXenCpuid.Merge(kvm, domain, vcpuId: 1);

        KvmCpuidEntry2 Leaf(uint function) => merged.Single(e => e.Function == function);
        Assert.Equal(0xDu, Leaf(0).Eax);
        Assert.Equal(0x8000_0008u, Leaf(0x8000_0000).Eax);

        // KVM's signature and features at 0x40000100, the max leaf moved with them.
        Assert.Equal((0x4000_0101u, 0x4B4D_564Bu), (Leaf(0x4000_0100).Eax, Leaf(0x4000_0100).Ebx));
        Assert.Equal(0x0100_7AFBu, Leaf(0x4000_0101).Eax);
        Assert.DoesNotContain(merged, e => e.Function == 0x4000_0105);

        // Xen's leaves as the Xen layer answers them, for this vCPU.
        for (uint leaf = 0x4000_0000; leaf <= 0x4000_0004; leaf++)
        {
            Assert.True(domain.TryGetCpuid(1, leaf, 0, out CpuidResult expected));
            KvmCpuidEntry2 e = Leaf(leaf);
            Assert.Equal(expected, new CpuidResult(e.Eax, e.Ebx, e.Ecx, e.Edx));
        }

        Assert.Equal(0x4000_0004u, Leaf(0x4000_0000).Eax);
        Assert.Equal(1u, Leaf(0x4000_0004).Ebx); // XEN_HVM_CPUID_VCPU_ID_PRESENT: EBX is the vCPU id
        Assert.Equal(kvm.Length - 1 + 5, merged.Length);
    }
}
