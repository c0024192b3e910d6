using System.Buffers.Binary;
using SharpVisor.Interop.Kvm;
using SharpVisor.TestSupport;

namespace SharpVisor.Kvm.Tests;

/// <summary>What a fresh vCPU starts with: boot MSRs, LAPIC LINT wiring, CPUID.</summary>
public unsafe class KvmVcpuSetupTests
{
    [KvmFact]
    public void BootMsrsHoldTheirValuesExceptTheOnesKvmRejected()
    {
        using KvmTestMachine machine = KvmTestMachine.Bare(vcpuCount: 2);
        foreach (KvmVcpu vcpu in machine.Vcpus)
        {
            Assert.All(vcpu.UnsupportedBootMsrs, index => Assert.Contains(KvmBootMsrs.Entries, e => e.Index == index));
            KvmMsrEntry[] applied = KvmBootMsrs.Entries
                .Where(e => !vcpu.UnsupportedBootMsrs.Contains(e.Index) && e.Index != KvmBootMsrs.Ia32Tsc)
                .ToArray();
            Assert.Contains(applied, e => e.Index == KvmBootMsrs.Ia32MiscEnable);

            ulong[] values = vcpu.ReadMsrs(applied.Select(e => e.Index).ToArray());

            for (int i = 0; i < applied.Length; i++)
            {
                Assert.True(applied[i].Data == values[i], $"vCPU {vcpu.Id} MSR 0x{applied[i].Index:x}: set 0x{applied[i].Data:x}, read 0x{values[i]:x}");
            }
        }
    }

    [KvmFact]
    public void Lint0IsExtIntAndLint1IsNmiOnEveryVcpu()
    {
        using KvmTestMachine machine = KvmTestMachine.Bare(vcpuCount: 2);
        foreach (KvmVcpu vcpu in machine.Vcpus)
        {
            KvmLapicState lapic = vcpu.GetLapic();
            var registers = new ReadOnlySpan<byte>(lapic.Regs, KvmLapicState.Size);
            uint lint0 = BinaryPrimitives.ReadUInt32LittleEndian(registers[KvmLapicState.LvtLint0Offset..]);
            uint lint1 = BinaryPrimitives.ReadUInt32LittleEndian(registers[KvmLapicState.LvtLint1Offset..]);
            uint apicId = BinaryPrimitives.ReadUInt32LittleEndian(registers[KvmLapicState.ApicIdOffset..]) >> 24;

            Assert.Equal(7u, (lint0 >> 8) & 7);
            Assert.Equal(4u, (lint1 >> 8) & 7);
            Assert.Equal((uint)vcpu.Id, apicId);
        }
    }

    [KvmFact]
    public void EachVcpusCpuidCarriesItsOwnApicId()
    {
        using KvmTestMachine machine = KvmTestMachine.Bare(vcpuCount: 2);
        foreach (KvmVcpu vcpu in machine.Vcpus)
        {
            KvmCpuidEntry2 leaf1 = Assert.Single(vcpu.Cpuid, e => e.Function == 1);
            Assert.Equal((uint)vcpu.Id, leaf1.Ebx >> 24);
            Assert.NotEqual(0u, leaf1.Ecx & KvmCpuidPolicy.HypervisorBit);
            Assert.All(vcpu.Cpuid.Where(e => e.Function == 0xB), e => Assert.Equal((uint)vcpu.Id, e.Edx));
        }
    }
}
