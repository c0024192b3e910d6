using SharpVisor.Host.Domains;
using SharpVisor.Machine;

namespace SharpVisor.Host.Firecracker;

/// <summary>How the machine stopped, as the status and state file report it.</summary>
public sealed record VmmStopStatus(MachineStopReason Reason, int ExitStatus, string Detail)
{
    public static VmmStopStatus From(DomainStopInfo info) => new(info.Reason, info.ExitStatus, info.Detail);
}
