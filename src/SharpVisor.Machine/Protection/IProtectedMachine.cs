namespace SharpVisor.Machine.Protection;

/// <summary>A machine whose accelerator enforces kernel protection's map (docs/security.md).</summary>
public interface IProtectedMachine
{
    /// <summary>The map every vCPU enforces; set before the vCPUs are created. Null: none.</summary>
    ProtectionMap? Protection { get; set; }
}
