namespace SharpVisor.Machine.Protection;

/// <summary>
/// The policy side of kernel protection (SharpVisor.Security implements it): the accelerators
/// enforce a <see cref="ProtectionMap"/> and call back here, on the vCPU's thread.
/// </summary>
public interface IProtectionMonitor
{
    /// <summary>
    /// A vCPU has entered user mode (CPL 3) and the map is not locked yet: the monitor decides
    /// whether the kernel has finished boot-time patching and, if so, locks the map (<see cref="ProtectionMap.Lock"/>).
    /// </summary>
    void OnUserModeEntered(IProtectionLockContext context);

    /// <summary>Counts and reports a violation; must not throw (it runs inside the guest's instruction).</summary>
    void OnViolation(in ProtectionViolation violation);
}
