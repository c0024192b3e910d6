namespace SharpVisor.Machine;

/// <summary>Why the whole machine stopped.</summary>
public enum MachineStopReason
{
    /// <summary>The guest powered off (ACPI S5, or a VMM stop request such as destroy).</summary>
    PowerOff,

    /// <summary>The guest asked for a reset (i8042 pulse, reset register).</summary>
    Reset,

    /// <summary>The guest wrote the debug-exit port; the status is (value &lt;&lt; 1) | 1.</summary>
    DebugExit,

    /// <summary>A vCPU triple-faulted, or the accelerator could not go on.</summary>
    Crashed,
}
