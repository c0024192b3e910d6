using Iced.Intel;
using SharpVisor.Machine;
using SharpVisor.Machine.CpuTemplates;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>
/// A CPU template (Firecracker's cpu-config) on the emulator: the guest's CPUID and RDMSR answers
/// carry the template's bits on every vCPU, and a leaf or MSR the CPU lacks stops the vCPU
/// from being created with a message naming it.
/// </summary>
public sealed class EmulatorCpuTemplateTests
{
    private const uint ArchCapabilities = 0x10A;

    [Fact]
    public void TheGuestSeesTheTemplatesCpuidBitsAndMsrValues()
    {
        (ulong leaf7Ebx, ulong leaf1Ecx, ulong archCapabilities) plain = Probe(null);
        var template = new CpuTemplate
        {
            Cpuid =
            [
                // Clear leaf 7 EBX bit 0 (FSGSBASE) and set bit 1; force leaf 1 ECX bit 0 (SSE3) off.
                new CpuidModifier(7, 0, CpuidRegister.Ebx, new TemplateBits(Set: 1UL << 1, Clear: 1UL << 0)),
                new CpuidModifier(1, 0, CpuidRegister.Ecx, new TemplateBits(Set: 0, Clear: 1UL << 0)),
            ],
            Msrs = [new MsrModifier(ArchCapabilities, new TemplateBits(Set: 1UL << 2, Clear: 1UL << 0))],
        };

        (ulong leaf7Ebx, ulong leaf1Ecx, ulong archCapabilities) templated = Probe(template);

        Assert.Equal((plain.leaf7Ebx & ~1UL) | 2UL, templated.leaf7Ebx);
        Assert.Equal(plain.leaf1Ecx & ~1UL, templated.leaf1Ecx);
        Assert.Equal((plain.archCapabilities & ~1UL) | 4UL, templated.archCapabilities);
        Assert.NotEqual(plain, templated);
    }

    [Fact]
    public void ALeafOrMsrTheCpuLacksIsRefusedWhenTheVcpuIsCreated()
    {
        var leaf = new CpuTemplate { Cpuid = [new CpuidModifier(0x7FFF_FFF0, 0, CpuidRegister.Eax, new TemplateBits(1, 0))] };
        var msr = new CpuTemplate { Msrs = [new MsrModifier(0x1234_5678, new TemplateBits(1, 0))] };

        var leafError = Assert.Throws<InvalidOperationException>(() => EmulatorTestMachine.LongMode(a => a.hlt(), template: leaf).Dispose());
        var msrError = Assert.Throws<InvalidOperationException>(() => EmulatorTestMachine.LongMode(a => a.hlt(), template: msr).Dispose());

        Assert.Contains("CPUID leaf 0x7ffffff0", leafError.Message);
        Assert.Contains("MSR 0x12345678", msrError.Message);
    }

    private static (ulong, ulong, ulong) Probe(CpuTemplate? template)
    {
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.mov(eax, 7);
            a.xor(ecx, ecx);
            a.cpuid();
            a.mov(eax, ebx);
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);
            a.mov(eax, 1);
            a.xor(ecx, ecx);
            a.cpuid();
            a.mov(eax, ecx);
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);
            a.mov(ecx, ArchCapabilities);
            a.rdmsr();
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);
            EmulatorTestMachine.EmitDebugExit(a, 0);
        }, template: template);

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        ulong[] values = machine.Output.Values.ToArray();
        Assert.Equal(3, values.Length);
        return (values[0], values[1], values[2]);
    }
}
