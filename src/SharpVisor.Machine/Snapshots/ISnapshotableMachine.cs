namespace SharpVisor.Machine.Snapshots;

/// <summary>A machine whose accelerator can save and load its state (docs/snapshot.md).</summary>
public interface ISnapshotableMachine
{
    /// <summary>Everything of the machine with state, in load order (time first, then the vCPUs).</summary>
    IReadOnlyList<ISnapshotable> SnapshotParts();

    /// <summary>
    /// The accelerator and what the guest saw of the processor (vendor, CPUID feature leaves): a
    /// snapshot loads only where this is the same, since the guest chose its code paths by it.
    /// </summary>
    string CpuIdentity();
}
