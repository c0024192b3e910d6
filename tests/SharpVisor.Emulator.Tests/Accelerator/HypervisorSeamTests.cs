using SharpVisor.Machine;
using SharpVisor.Machine.Hypervisor;
using static Iced.Intel.AssemblerRegisters;

namespace SharpVisor.Emulator.Tests.Accelerator;

/// <summary>The emulator's side of Machine's hypercall seam: CPUID leaves, MSRs, VMCALL/VMMCALL and the upcall vector.</summary>
public sealed class HypervisorSeamTests
{
    private const ulong Buffer = 0x30000;

    [Fact]
    public void HypervisorLeavesMsrsAndHypercallsReachTheInterface()
    {
        var hypervisor = new RecordingHypervisor();
        using EmulatorTestMachine machine = EmulatorTestMachine.LongMode(a =>
        {
            a.mov(eax, 0x4000_0000);
            a.cpuid();
            a.mov(eax, ebx);
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);                  // the interface's signature, not KVM's
            a.mov(eax, 0x4000_0001);
            a.cpuid();
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.@out(dx, eax);                  // a leaf it does not answer reads zero
            a.mov(ecx, 0x4000_0000);
            a.mov(eax, 0x1234);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(dx, EmulatorTestMachine.OutputPort);
            a.mov(eax, 7);
            a.mov(rdi, Buffer);
            a.vmcall();
            a.@out(dx, eax);                  // the hypercall's result
            a.mov(eax, 8);
            a.vmmcall();
            a.@out(dx, eax);
            EmulatorTestMachine.EmitDebugExit(a, 0);
        }, hypervisor: hypervisor);
        machine.Memory.Write<ulong>(Buffer, 0xABCD);
        byte[] pattern = Enumerable.Range(0, 9000).Select(i => (byte)(i * 7)).ToArray();
        pattern.AsSpan(0, 8).Clear();
        BitConverter.GetBytes(0xABCDUL).CopyTo(pattern, 0);
        machine.Memory.Write(Buffer, pattern);
        hypervisor.Expected = pattern;

        VirtualMachineRunner runner = machine.Run();

        Assert.Null(runner.FailureExit);
        Assert.Equal([0x5A5A_5A5AUL, 0UL, 0xABCE_0007UL, 0xABCE_0008UL], machine.Output.Values);
        Assert.Equal((0, 0x4000_0000u, 0x1234UL), hypervisor.MsrWrite);
    }

    /// <summary>A hypervisor interface that answers one leaf, takes MSR 0x40000000, and returns op + (*rdi + 1) << 16.</summary>
    private sealed class RecordingHypervisor : IHypervisorInterface
    {
        public (int Vcpu, uint Index, ulong Value) MsrWrite { get; private set; }

        /// <summary>What a 9000-byte read at RDI (three pages) must return.</summary>
        public byte[] Expected { get; set; } = [];

        /// <summary>The test machine presents the host's vendor: AMD's guests use VMMCALL, Intel's VMCALL (as Linux picks).</summary>
        public void Connect(IHypervisorHost host) =>
            Assert.Equal(HostCpu.Vendor == CpuVendor.Amd ? HypercallInstruction.Vmmcall : HypercallInstruction.Vmcall, host.Instruction);

        public bool TryGetCpuid(int vcpuId, uint leaf, uint subleaf, out CpuidResult result)
        {
            result = new CpuidResult(0x4000_0000, 0x5A5A_5A5A, 0, 0);
            return leaf == 0x4000_0000;
        }

        public bool TryReadMsr(int vcpuId, uint index, out ulong value)
        {
            value = 0;
            return false;
        }

        public bool TryWriteMsr(int vcpuId, uint index, ulong value, out bool accepted)
        {
            accepted = index == 0x4000_0000;
            if (accepted)
            {
                MsrWrite = (vcpuId, index, value);
            }

            return accepted;
        }

        public void Hypercall(IHypercallContext context)
        {
            Span<byte> word = stackalloc byte[8];
            Assert.True(context.LongMode);
            Assert.True(context.TryReadVirtual(context.GetRegister(7), word));
            Assert.False(context.TryReadVirtual(0x7FFF_0000_0000, word));
            var large = new byte[Expected.Length];
            Assert.True(context.TryReadVirtual(context.GetRegister(7), large));   // a buffer across three pages
            Assert.Equal(Expected, large);
            context.SetRegister(0, context.GetRegister(0) + ((BitConverter.ToUInt64(word) + 1) << 16));
        }

        public bool TryGetPendingUpcall(int vcpuId, out byte vector)
        {
            vector = 0;
            return false;
        }
    }
}
