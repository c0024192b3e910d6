namespace SharpVisor;

/// <summary>Where a <see cref="VirtualMachine"/> is in its life.</summary>
public enum VirtualMachineState
{
    /// <summary>Built, the kernel loaded, not started.</summary>
    Created,

    /// <summary>The vCPUs run the guest.</summary>
    Running,

    /// <summary>Every vCPU parked; on the emulator the guest's clocks stand still too.</summary>
    Paused,

    /// <summary>The guest stopped (see <see cref="VirtualMachine.WaitForExitAsync"/>); the machine can only be disposed.</summary>
    Stopped,
}
