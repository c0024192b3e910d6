using SharpVisor.Machine;

namespace SharpVisor.Host.Vmm;

/// <summary>How a domain's run ended: the VMM exit status, why, and a crash report when it crashed.</summary>
public sealed record RunOutcome(int ExitStatus, MachineStopReason Reason, string Detail, string? CrashReport);
