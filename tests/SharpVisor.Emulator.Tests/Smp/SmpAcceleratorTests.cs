using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Tests.Accelerator;
using SharpVisor.Emulator.Tests.Mmu;

namespace SharpVisor.Emulator.Tests.Smp;

/// <summary>The software accelerator builds its vCPUs over one write tracker.</summary>
public class SmpAcceleratorTests
{
    [Theory]
    [MemberData(nameof(MmuHarness.Modes), MemberType = typeof(MmuHarness))]
    public void TheVcpusOfAMachineShareItsWriteTracker(MmuMode mode)
    {
        using var machine = EmulatorTestMachine.LongMode(a => a.hlt(), vcpuCount: 3, mmuMode: mode);
        foreach (var vcpu in machine.Vcpus)
        {
            WriteTrackerMember tracking = vcpu.Cpu.Mmu.Tracking;
            Assert.Same(machine.Vm.WriteTracker, tracking.Tracker);
            Assert.True(tracking.Tlb.Shared);
        }

        // Code vCPU 0 decodes is tracked for every vCPU: the others' TLBs lose their write tags for it.
        machine.Vcpus[0].Cpu.Mmu.Tracking.Track(0x5000, TrackReason.Code);
        Assert.True(machine.Vcpus[2].Cpu.Mmu.IsWriteTracked(0x5008));
    }
}
