namespace SharpVisor.Machine;

/// <summary>Why a vCPU's run call returned to the VMM for good.</summary>
public enum VcpuExitReason
{
    /// <summary>The machine asked every vCPU to stop (power-off, reset, debug exit, destroy).</summary>
    Stopped,

    /// <summary>Triple fault: the CPU shut down (KVM_EXIT_SHUTDOWN).</summary>
    Shutdown,

    /// <summary>HLT with interrupts disabled: nothing can ever wake the vCPU.</summary>
    HaltedForever,

    /// <summary>The accelerator could not run or emulate the guest (KVM_EXIT_INTERNAL_ERROR, FAIL_ENTRY, unknown exit).</summary>
    InternalError,
}
