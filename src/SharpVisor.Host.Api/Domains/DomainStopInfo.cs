using SharpVisor.Machine;

namespace SharpVisor.Host.Domains;

/// <summary>Why a machine stopped: the machine layer's reason, the VMM exit status and a one-line detail.</summary>
public sealed record DomainStopInfo(MachineStopReason Reason, int ExitStatus, string Detail);
