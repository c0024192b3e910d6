using SharpVisor.Host.Vmm;
using SharpVisor.Machine;
using SharpVisor.TestSupport;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// Save and restore on KVM with the tiny counting guest of <see cref="EmulatorSnapshotTests"/>:
/// the vCPU (KVM_GET/SET_REGS, SREGS, FPU, XSAVE, XCRS, MSRS, LAPIC, VCPU_EVENTS, MP_STATE) and
/// the VM (KVM_GET/SET_CLOCK, IRQCHIP, PIT2) go through a snapshot into a new KVM machine, which
/// ends with the uninterrupted run's value.
/// </summary>
public sealed class KvmSnapshotTests
{
    // Under PVM-backed KVM (this machine) the loop runs at ~50 k rounds a second; on hardware KVM far faster.
    private const int Iterations = 400_000;

    [KvmFact]
    public void ARunningKvmGuestIsSavedAndRestored()
    {
        using var directory = new TempDirectory();
        string kernel = directory.File("lcg.bin");
        File.WriteAllBytes(kernel, EmulatorSnapshotTests.BuildKernel(Iterations));
        string state = directory.File("vm.state");
        string memory = directory.File("vm.mem");
        var configuration = new MachineConfiguration
        {
            KernelPath = kernel,
            MemorySize = 16UL << 20,
            Accelerator = AcceleratorKind.Kvm,
            SerialOutput = new CapturedOutput(),
            EntropyDevice = false,
        };

        uint savedIteration;
        using (VirtualMachineMonitor source = VirtualMachineMonitor.Create(configuration))
        {
            var run = new Thread(() => source.Run(TimeSpan.FromMinutes(2)));
            run.Start();
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (source.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4) < 1000)
            {
                Assert.True(DateTime.UtcNow < deadline, "the guest never started counting");
                Thread.Sleep(5);
            }

            Assert.True(source.Pause(TimeSpan.FromSeconds(10)));
            savedIteration = source.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4);
            source.SaveSnapshot(state, memory);
            source.Stop();
            source.Resume();
            run.Join();
        }

        Assert.InRange(savedIteration, 1000u, (uint)Iterations - 1);
        using VirtualMachineMonitor restored = VirtualMachineMonitor.Restore(state, memory, c => c with { SerialOutput = new CapturedOutput() });
        Assert.Equal(savedIteration, restored.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4));
        RunOutcome outcome = restored.Run(TimeSpan.FromMinutes(2));
        Assert.True(outcome.Reason == MachineStopReason.DebugExit, $"{outcome.Reason} {outcome.Detail}: saved at {savedIteration}, now {restored.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4)}, rip 0x{restored.Vcpus[0].GetState().Rip:x}");

        Assert.Equal((MachineStopReason.DebugExit, (EmulatorSnapshotTests.Done << 1) | 1), (outcome.Reason, outcome.ExitStatus));
        Assert.Equal((uint)Iterations, restored.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress + 4));
        Assert.Equal(EmulatorSnapshotTests.ExpectedValue(Iterations), restored.Machine.Memory.Read<uint>(EmulatorSnapshotTests.StateAddress));
    }
}
