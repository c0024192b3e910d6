namespace SharpVisor.Machine.Snapshots;

/// <summary>
/// A piece of the machine that saves and restores its own state, so the state stays with the
/// code that defines it. The snapshot file holds one section per instance, named by
/// <see cref="SnapshotTag"/>; <see cref="LoadState"/> runs on a freshly built, never-run machine
/// of the same configuration, while no vCPU runs.
/// </summary>
public interface ISnapshotable
{
    /// <summary>The section's name, unique in the machine ("uart-3f8", "vcpu0", "virtio-pci-00:01.0").</summary>
    string SnapshotTag { get; }

    /// <summary>Writes the state; called while every vCPU is parked.</summary>
    void SaveState(SnapshotWriter writer);

    /// <summary>Reads what <see cref="SaveState"/> wrote; throws <see cref="SnapshotException"/> on values it cannot take.</summary>
    void LoadState(SnapshotReader reader);
}
