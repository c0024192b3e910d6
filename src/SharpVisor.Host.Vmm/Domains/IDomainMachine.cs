namespace SharpVisor.Host.Domains;

/// <summary>
/// One running guest machine, as the per-domain VMM process drives it: boot, pause, resume,
/// power button, forced stop, serial input, counters. The real implementation wraps the
/// VirtualMachineMonitor; tests use a fake so the API layer is tested on its own.
/// </summary>
public interface IDomainMachine : IDisposable
{
    /// <summary>Short accelerator name for reports: "kvm", "emulator".</summary>
    string AcceleratorName { get; }

    /// <summary>Raised once, on any thread, when the machine has stopped for good.</summary>
    event Action<DomainStopInfo>? Stopped;

    /// <summary>Builds nothing new: starts the vCPUs of a machine already built from its spec.</summary>
    void Start();

    /// <summary>Returns once no vCPU runs guest code; the guest keeps its state.</summary>
    void Pause();

    void Resume();

    /// <summary>Presses the ACPI power button: a guest with ACPI shuts itself down.</summary>
    void PressPowerButton();

    /// <summary>
    /// Types Ctrl-Alt-Del on the i8042 keyboard, as Firecracker's SendCtrlAltDel does; throws
    /// <see cref="InvalidOperationException"/> when the guest's keyboard cannot take the keys.
    /// </summary>
    void SendCtrlAltDel();

    /// <summary>Stops the machine now (pulls the plug); <see cref="Stopped"/> follows.</summary>
    void Stop(string detail);

    /// <summary>Bytes typed on the serial console, for the guest's UART.</summary>
    void WriteConsoleInput(ReadOnlySpan<byte> data);

    /// <summary>Sets the balloon's target; throws <see cref="NotSupportedException"/> without a balloon device.</summary>
    void SetBalloonTarget(long amountMib);

    /// <summary>The balloon's target, actual size and statistics; throws <see cref="NotSupportedException"/> without a balloon device.</summary>
    BalloonState ReadBalloon();

    /// <summary>
    /// How often the guest refreshes its balloon statistics; throws <see cref="NotSupportedException"/>
    /// without a balloon or when statistics were not enabled at boot.
    /// </summary>
    void SetBalloonStatisticsInterval(int seconds);

    DomainCounters ReadCounters();

    /// <summary>Starts the vCPU threads parked, as after a pause (a snapshot loaded without resume_vm).</summary>
    void StartPaused() => throw new NotSupportedException("this machine cannot start paused");

    /// <summary>Writes a snapshot of the paused machine (docs/snapshot.md); machines that cannot throw <see cref="NotSupportedException"/>.</summary>
    SharpVisor.Host.Vmm.SnapshotSummary SaveSnapshot(string statePath, string memoryPath, bool diff) =>
        throw new NotSupportedException("this machine cannot take snapshots");

    /// <summary>The domain's XenStore, as the toolstack reaches it; null for a machine that is not a Xen domain.</summary>
    /// <summary>Live migration's source side (docs/migration.md): on success the machine is paused, to be stopped; on failure it runs on.</summary>
    SharpVisor.Host.Migration.MigrationResult MigrateTo(Stream stream, SharpVisor.Host.Migration.MigrationOptions options, Action<string> progress) =>
        throw new NotSupportedException("this machine cannot migrate");

    DomainXenStore? XenStore => null;

    /// <summary>
    /// A running drive's new backing file and/or rate limiter (null leaves each as it is);
    /// throws <see cref="ArgumentException"/> or <see cref="IOException"/> and changes nothing when it cannot.
    /// </summary>
    void UpdateDrive(string id, string? path, Vmm.RateLimitConfiguration? rateLimit);

    /// <summary>A running NIC's new rate limiters (null leaves each as it is); throws <see cref="ArgumentException"/> for an unknown id.</summary>
    void UpdateNetworkInterface(string id, Vmm.RateLimitConfiguration? rx, Vmm.RateLimitConfiguration? tx);

    /// <summary>The domain's kernel protection (docs/security.md); null when it is not protected.</summary>
    SharpVisor.Security.KernelProtector? Protector => null;

    /// <summary>The most recent protection violations; null when the domain is not protected.</summary>
    ProtectionEventLog? ProtectionEvents => null;
}
