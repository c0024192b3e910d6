using SharpVisor.Interop.Kvm;
using SharpVisor.Machine.CpuTemplates;
using SharpVisor.Memory;
using SharpVisor.TestSupport;

namespace SharpVisor.Kvm.Tests;

/// <summary>
/// A CPU template on KVM: its CPUID bits land in the table the vCPU gets (after SharpVisor's
/// policy), its MSR bits in KVM's MSRs, and a leaf KVM does not report refuses the vCPU with
/// Firecracker's message.
/// </summary>
public sealed class KvmCpuTemplateTests
{
    private const uint MiscEnable = 0x1A0;

    private static readonly CpuTemplate s_template = new()
    {
        // Leaf 0x80000001 ECX bit 0 (LAHF/SAHF in 64-bit mode): PVM overrides leaf 1 EDX and leaf 7
        // with the host's after KVM_SET_CPUID2, but takes this one.
        Cpuid = [new CpuidModifier(0x8000_0001, 0, CpuidRegister.Ecx, new TemplateBits(Set: 0, Clear: 1u << 0))],
        Msrs = [new MsrModifier(MiscEnable, new TemplateBits(Set: 1UL << 0, Clear: 0))],
    };

    [Fact]
    public void TheTemplateForcesItsBitsIntoTheTable()
    {
        KvmCpuidEntry2[] table =
        [
            new() { Function = 1, Ecx = 0xFFFF_FFFF, Edx = 7 },
            new() { Function = 7, Index = 0, Flags = KvmCpuidEntry2.FlagSignificantIndex, Ebx = 0 },
        ];
        var template = new CpuTemplate
        {
            Cpuid =
            [
                new CpuidModifier(1, 0, CpuidRegister.Ecx, new TemplateBits(Set: 0, Clear: 1)),
                new CpuidModifier(7, 0, CpuidRegister.Ebx, new TemplateBits(Set: 0x8, Clear: 0)),
            ],
        };

        KvmCpuTemplate.ApplyCpuid(table, template);

        Assert.Equal(0xFFFF_FFFEu, table[0].Ecx);
        Assert.Equal(7u, table[0].Edx);
        Assert.Equal(8u, table[1].Ebx);
    }

    [Fact]
    public void ALeafOutsideTheTableIsRefusedAsFirecrackerDoes()
    {
        KvmCpuidEntry2[] table = [new() { Function = 1 }];
        var template = new CpuTemplate { Cpuid = [new CpuidModifier(7, 1, CpuidRegister.Eax, new TemplateBits(1, 0))] };

        var error = Assert.Throws<InvalidOperationException>(() => KvmCpuTemplate.ApplyCpuid(table, template));

        Assert.Equal("Template changes a CPUID entry not supported by KVM: Leaf: 0x7, Subleaf: 0x1", error.Message);
    }

    [Fact]
    public void AKvmThatOverridesATemplatedBitIsCaught()
    {
        KvmCpuidEntry2[] reported = [new() { Function = 7, Ebx = 0xF1BF_03AB }];
        var template = new CpuTemplate { Cpuid = [new CpuidModifier(7, 0, CpuidRegister.Ebx, new TemplateBits(Set: 0, Clear: 1))] };
        var honoured = new CpuTemplate { Cpuid = [new CpuidModifier(7, 0, CpuidRegister.Ebx, new TemplateBits(Set: 1, Clear: 4))] };

        var error = Assert.Throws<InvalidOperationException>(() => KvmCpuTemplate.CheckApplied(reported, template));
        KvmCpuTemplate.CheckApplied(reported, honoured);

        Assert.StartsWith("KVM did not take the CPU template's CPUID leaf 0x7 subleaf 0x0 ebx: it reports 0xf1bf03ab", error.Message);
    }

    [KvmFact]
    public void AKvmVcpuStartsWithTheTemplatesCpuidAndMsrs()
    {
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        using KvmVirtualMachine plainVm = KvmVirtualMachine.Create(memory, 1);
        var plain = (KvmVcpu)plainVm.CreateVcpu(0);
        using GuestMemory memory2 = GuestMemory.CreateRam(2 << 20);
        using KvmVirtualMachine templatedVm = KvmVirtualMachine.Create(memory2, 1);
        templatedVm.CpuTemplate = s_template;

        var templated = (KvmVcpu)templatedVm.CreateVcpu(0);

        uint plainEcx = Assert.Single(plain.Cpuid, e => e.Function == 0x8000_0001).Ecx;
        uint templatedEcx = Assert.Single(templated.Cpuid, e => e.Function == 0x8000_0001).Ecx;
        Assert.Equal(plainEcx & ~1u, templatedEcx);
        Assert.Equal(1UL, templated.ReadMsrs(MiscEnable)[0] & 1);
    }

    [KvmFact]
    public void AKvmVcpuIsNotCreatedForALeafKvmLacks()
    {
        using GuestMemory memory = GuestMemory.CreateRam(2 << 20);
        using KvmVirtualMachine vm = KvmVirtualMachine.Create(memory, 1);
        vm.CpuTemplate = new CpuTemplate { Cpuid = [new CpuidModifier(0x7FFF_FFF0, 0, CpuidRegister.Eax, new TemplateBits(1, 0))] };

        var error = Assert.Throws<InvalidOperationException>(() => vm.CreateVcpu(0));

        Assert.Contains("Leaf: 0x7ffffff0", error.Message);
    }
}
