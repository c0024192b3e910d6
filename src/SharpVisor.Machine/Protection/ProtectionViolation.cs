namespace SharpVisor.Machine.Protection;

/// <summary>
/// One refused (or, in log mode, allowed and reported) attempt: the vCPU and guest RIP (-1 and 0
/// for a device), the target (linear address, CR number, MSR index or guest-physical address),
/// the value the guest wanted to write where there is one, and whether it was blocked.
/// </summary>
public readonly record struct ProtectionViolation(
    ProtectionViolationKind Kind, int Vcpu, ulong Rip, ulong Target, ulong Value, bool Blocked);
