using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine.Snapshots;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// The Firecracker configuration of the machine a snapshot describes: what the daemon lists for a
/// restored domain and boots when it reboots (the command line is the final one, so no drive is
/// marked root). The whole state file is checked on the way (checksums, version).
/// </summary>
public static class SnapshotConfigurationView
{
    /// <param name="accelerator">The accelerator the snapshot was taken on ("kvm" or "emulator"): the only one it loads on.</param>
    public static FullVmConfiguration Read(string statePath, out string accelerator)
    {
        SnapshotFile file = SnapshotFile.Load(statePath);
        SnapshotReader reader = file.Open(SnapshotConfiguration.Tag);
        Vmm.MachineConfiguration machine = SnapshotConfiguration.Load(reader, out _);
        reader.EnsureEnd();
        return FromMachine(machine, out accelerator);
    }

    /// <summary>The Firecracker configuration of a machine configuration (a snapshot's, or a live migration's).</summary>
    public static FullVmConfiguration FromMachine(Vmm.MachineConfiguration machine, out string accelerator)
    {
        accelerator = machine.Accelerator == AcceleratorKind.Kvm ? "kvm" : "emulator";
        return new FullVmConfiguration
        {
            BootSource = new BootSource { KernelImagePath = machine.KernelPath, InitrdPath = machine.InitrdPath, BootArgs = machine.CommandLine },
            MachineConfig = new MachineConfig { VcpuCount = machine.VcpuCount, MemSizeMib = (long)(machine.MemorySize >> 20) },
            Drives = machine.Disks.Select((d, i) => new Drive
            {
                DriveId = d.Id ?? $"disk{i}",
                IsRootDevice = false,
                IsReadOnly = d.ReadOnly,
                PathOnHost = d.Path,
                CacheType = d.CacheMode.ToString(),
            }).ToList(),
            NetworkInterfaces = machine.NetworkInterfaces.Select((n, i) => new NetworkInterface
            {
                IfaceId = n.Id ?? $"eth{i}",
                HostDevName = n.TapName ?? throw new SnapshotException("the snapshot's NIC has no TAP name the daemon can attach again"),
                GuestMac = n.Mac?.ToString(),
            }).ToList(),
            Balloon = machine.Balloon is { } b ? new Balloon { AmountMib = b.InitialTargetMib, DeflateOnOom = b.DeflateOnOom, StatsPollingIntervalS = b.StatisticsIntervalSeconds } : null,
            Entropy = machine.EntropyDevice ? new EntropyDevice() : null,
        };
    }
}
