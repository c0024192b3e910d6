namespace SharpVisor;

/// <summary>How a guest's run ended.</summary>
/// <param name="Reason">Why it stopped.</param>
/// <param name="ExitStatus">A process-style status: 0 for a clean power-off, (N &lt;&lt; 1) | 1 for debug-exit byte N.</param>
/// <param name="Detail">One line for people, e.g. "ACPI S5" or the crash's cause.</param>
public sealed record VirtualMachineExit(ExitReason Reason, int ExitStatus, string Detail);
