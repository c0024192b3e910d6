using SharpVisor.Boot;
using SharpVisor.Interop;

namespace SharpVisor.Host.Vmm;

/// <summary>Everything a virtual machine monitor needs to build and boot one domain.</summary>
public sealed record MachineConfiguration
{
    public const ulong DefaultMemorySize = 512UL << 20;

    public const int MaxVcpus = 64;

    public required string KernelPath { get; init; }

    /// <summary>The domain's name where the guest can see it (a Xen domain's XenStore name node); null: none given.</summary>
    public string? Name { get; init; }

    public string? InitrdPath { get; init; }

    public string CommandLine { get; init; } = "";

    public IReadOnlyList<BootModule> Modules { get; init; } = [];

    /// <summary>
    /// Who decompresses a bzImage (<c>--kernel-decompressor vmm|guest</c>): the VMM by default, which
    /// enters the kernel at startup_64 with KASLR off; the guest's own decompressor otherwise.
    /// </summary>
    public KernelDecompressor KernelDecompressor { get; init; }

    public ulong MemorySize { get; init; } = DefaultMemorySize;

    public int VcpuCount { get; init; } = 1;

    public AcceleratorKind Accelerator { get; init; } = AcceleratorKind.Auto;

    /// <summary>
    /// The emulator's paging technique (<c>--mmu shadow|nested</c>); null means shadow. Asking for
    /// one together with <see cref="AcceleratorKind.Kvm"/> is an error; when auto picks KVM it is ignored.
    /// </summary>
    public MmuKind? Mmu { get; init; }

    /// <summary>
    /// The CPU vendor the guest sees (<c>--cpu-vendor intel|amd</c>); null means the host's, so a
    /// guest moved between the emulator and KVM sees the same. KVM runs the host's processor: another
    /// vendor with <see cref="AcceleratorKind.Kvm"/> is an error, and makes auto choose the emulator.
    /// </summary>
    public CpuVendorKind? CpuVendor { get; init; }

    /// <summary>The KVM device node (a test can name a missing one).</summary>
    public string KvmDevicePath { get; init; } = "/dev/kvm";

    /// <summary>Where the 16550's output goes; null discards it.</summary>
    public Stream? SerialOutput { get; init; }

    /// <summary>Initramfs archives appended after <see cref="InitrdPath"/> (each 4-byte aligned).</summary>
    public IReadOnlyList<string> ExtraInitrdPaths { get; init; } = [];

    /// <summary>virtio-blk disks, in the order the guest names them (vda, vdb, ...).</summary>
    public IReadOnlyList<DiskConfiguration> Disks { get; init; } = [];

    /// <summary>virtio-net NICs over TAP interfaces.</summary>
    public IReadOnlyList<NetworkInterfaceConfiguration> NetworkInterfaces { get; init; } = [];

    /// <summary>A virtio-balloon device, or null for none.</summary>
    public BalloonConfiguration? Balloon { get; init; }

    /// <summary>
    /// Where a virtio-console (the guest's hvc0) writes; null means no such device. Off by
    /// default: the 16550 is the console, and a second one needs somewhere to go.
    /// </summary>
    public Stream? VirtioConsoleOutput { get; init; }

    /// <summary>
    /// A virtio-rng fed by the host's CSPRNG. On by default, as in Cloud Hypervisor: a guest
    /// without a hardware entropy source otherwise waits long for its random pool.
    /// </summary>
    public bool EntropyDevice { get; init; } = true;

    /// <summary>
    /// Firecracker's boot-timer device (<c>--boot-timer</c>): when set, it is attached at
    /// <see cref="Devices.Legacy.BootTimerDevice.Address"/> (the PCI window then starts one page
    /// later) and its "Guest-boot-time = ..." lines go here.
    /// </summary>
    public Action<string>? BootTimer { get; init; }

    /// <summary>A virtio-vsock device, or null for none.</summary>
    public VsockConfiguration? Vsock { get; init; }

    /// <summary>
    /// Where the VMM reports what the guest did wrong that it could survive, one line each: a device
    /// that needs reset, a BAR the guest misplaced, bad platform register accesses, unimplemented
    /// instructions (the emulator rate-limits its own); null: counted only.
    /// </summary>
    public Action<string>? Log { get; init; }

    /// <summary>Run the guest as a Xen domain (PVH): Xen's CPUID leaves, hypercalls, event channels and PV console.</summary>
    public XenMode Xen { get; init; }

    /// <summary>A Xen domain's id (the daemon's), or null: domain 1.</summary>
    public int? XenDomainId { get; init; }

    /// <summary>The daemon's domains directory for the inter-domain link (docs/xen.md, "Inter-domain"), or null: the domain is alone.</summary>
    public string? XenLinkDirectory { get; init; }

    /// <summary>Kernel runtime protection (<c>--protect</c>, docs/security.md); null: none.</summary>
    public SharpVisor.Security.ProtectionPolicy? Protection { get; init; }

    /// <summary>A custom CPU template (Firecracker's cpu-config) every vCPU applies; null: the accelerator's CPU as it is.</summary>
    public SharpVisor.Machine.CpuTemplates.CpuTemplate? CpuTemplate { get; init; }

    /// <summary>Checks the values that no later layer checks; throws <see cref="ArgumentException"/>.</summary>
    public void Validate()
    {
        if (VcpuCount < 1 || VcpuCount > MaxVcpus)
        {
            throw new ArgumentException($"vCPU count {VcpuCount} is out of range (1-{MaxVcpus})");
        }

        if (string.IsNullOrEmpty(KernelPath))
        {
            throw new ArgumentException("no kernel given");
        }

        foreach (string initrd in ExtraInitrdPaths)
        {
            RequireRegularFile(initrd, "extra initrd");
        }

        ValidateDisks();
        ValidateNetworkInterfaces();
        if (Balloon is { } balloon)
        {
            if (balloon.InitialTargetMib < 0 || (ulong)balloon.InitialTargetMib > MemorySize >> 20)
            {
                throw new ArgumentException($"balloon target {balloon.InitialTargetMib} MiB is out of range (0-{MemorySize >> 20} MiB, the guest's memory)");
            }

            Refuse(ConfigurationRules.StatisticsInterval(balloon.StatisticsIntervalSeconds, "balloon statistics interval"));
        }
    }

    /// <summary>The file must exist and be a regular file (not a directory or a device node).</summary>
    private static void RequireRegularFile(string path, string what)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new ArgumentException($"{what}: empty path");
        }

        if (Directory.Exists(path))
        {
            throw new ArgumentException($"{what} '{path}' is a directory, not a regular file");
        }

        if (!File.Exists(path))
        {
            throw new ArgumentException($"{what} '{path}' does not exist");
        }

        if (!IsRegularFile(path))
        {
            throw new ArgumentException($"{what} '{path}' is not a regular file");
        }
    }

    private static unsafe bool IsRegularFile(string path)
    {
        FileStat stat;
        return LibC.Stat(path, &stat) == 0 && stat.IsRegularFile;
    }

    private void ValidateDisks()
    {
        var paths = new List<string>();
        var ids = new HashSet<string>();
        foreach (DiskConfiguration disk in Disks)
        {
            if (disk.XenBackendDomain is null || !ConfigurationRules.IsDriverDomainDevice(disk.Path))
            {
                // A guest driver domain's own disk (phy:/dev/xvdX,…,backend=) is that domain's, not a host file.
                Refuse(ConfigurationRules.DiskImage(disk.Path, "disk image"));
            }

            if (paths.Any(p => ConfigurationRules.SameImage(p, disk.Path)))
            {
                throw new ArgumentException($"disk image '{disk.Path}' is given twice");
            }

            paths.Add(disk.Path);
            if (disk.Id is { } id)
            {
                Refuse(ConfigurationRules.DeviceId(id, "disk id"));
                if (!ids.Add(id))
                {
                    throw new ArgumentException($"disk id '{id}' is given twice");
                }
            }
        }
    }

    private static void Refuse(string? reason)
    {
        if (reason is not null)
        {
            throw new ArgumentException(reason);
        }
    }

    private void ValidateNetworkInterfaces()
    {
        var taps = new HashSet<string>();
        var macs = new HashSet<MacAddress>();
        foreach (NetworkInterfaceConfiguration nic in NetworkInterfaces)
        {
            if (nic.TapName is { } tap)
            {
                Refuse(ConfigurationRules.TapName(tap, "TAP name"));
                if (!taps.Add(tap))
                {
                    throw new ArgumentException($"TAP '{tap}' is given to two NICs");
                }
            }

            if (nic.Mac is { } mac)
            {
                if (mac.IsMulticast || mac.IsZero)
                {
                    throw new ArgumentException($"MAC address {mac} is not a unicast address");
                }

                if (!macs.Add(mac))
                {
                    throw new ArgumentException($"MAC address {mac} is given to two NICs");
                }
            }
        }
    }
}
