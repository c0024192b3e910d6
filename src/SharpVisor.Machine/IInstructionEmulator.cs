namespace SharpVisor.Machine;

/// <summary>
/// Runs one guest instruction in software for an accelerator that could not: KVM stops with
/// "instruction emulation failed" on instructions its own emulator lacks (PVM: XGETBV, INT3, ...).
/// The accelerator hands over the vCPU's state, the emulator executes the instruction at RIP
/// against it and the machine's memory and buses (an exception it raises is delivered through
/// the guest's IDT, as the CPU would), and the accelerator loads the state back and continues.
/// The VMM supplies the implementation (SharpVisor's x86 emulator), so accelerators do not
/// reference the emulator.
/// </summary>
public interface IInstructionEmulator
{
    /// <summary>
    /// Executes the instruction at <paramref name="state"/>'s RIP on vCPU <paramref name="vcpuId"/>,
    /// updating <paramref name="state"/> in place. Called on that vCPU's thread.
    /// </summary>
    InstructionEmulationResult EmulateOne(int vcpuId, EmulatedInstructionState state);
}
