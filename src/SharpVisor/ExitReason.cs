namespace SharpVisor;

/// <summary>Why a guest stopped.</summary>
public enum ExitReason
{
    /// <summary>The guest powered off (ACPI S5), or <see cref="VirtualMachine.Stop"/> stopped it.</summary>
    PowerOff,

    /// <summary>The guest reset the machine (reboot).</summary>
    Reset,

    /// <summary>The guest wrote to the debug-exit port (test kernels); see <see cref="VirtualMachineExit.ExitStatus"/>.</summary>
    DebugExit,

    /// <summary>The guest did what the machine cannot survive (a triple fault, an unhandled exit); <see cref="VirtualMachineExit.Detail"/> says what.</summary>
    Crashed,
}
