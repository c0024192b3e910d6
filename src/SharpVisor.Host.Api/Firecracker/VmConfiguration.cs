using SharpVisor.Devices.Virtio;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;
using SharpVisor.Host.Vmm;
using SharpVisor.Memory;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// The pre-boot configuration of one VM, built by the Firecracker API's PUT requests (or a
/// config file, which applies the same steps). Each setter validates its whole input before
/// changing anything, so a refused request leaves the configuration as it was.
/// Not thread-safe: the VMM controller serializes access.
/// </summary>
public sealed class VmConfiguration
{
    public const int MaxVcpus = 32;
    public const int MaxCommandLineBytes = 4096;
    public const int MaxDevices = 16;

    private readonly List<Drive> _drives = new();
    private readonly List<NetworkInterface> _networkInterfaces = new();
    private string? _protectionText;

    public BootSource? BootSource { get; private set; }

    /// <summary>Firecracker's defaults until PUT /machine-config: 1 vCPU, 128 MiB.</summary>
    public MachineConfig MachineConfig { get; private set; } = new() { VcpuCount = 1, MemSizeMib = 128 };

    public IReadOnlyList<Drive> Drives => _drives;

    public IReadOnlyList<NetworkInterface> NetworkInterfaces => _networkInterfaces;

    public Balloon? Balloon { get; private set; }

    /// <summary>The virtio-rng device, when PUT /entropy asked for one.</summary>
    public EntropyDevice? Entropy { get; private set; }

    /// <summary>PUT /entropy: a virtio-rng device; a rate limiter is refused (SharpVisor has none yet).</summary>
    public void SetEntropy(EntropyDevice entropy)
    {
        if (entropy.RateLimiter is not null)
        {
            throw ApiException.BadRequest("rate_limiter is not supported by SharpVisor yet on the entropy device (drives and network interfaces have rate limiters, its virtio-rng does not); leave it out");
        }

        Entropy = entropy;
    }

    /// <summary>Kernel runtime protection (SharpVisor's extension), or null.</summary>
    public SharpVisor.Security.ProtectionPolicy? Protection { get; private set; }

    /// <summary>The "sharpvisor-protection" section or PUT /sharpvisor/protection before boot: --protect's policy.</summary>
    public void SetProtection(ProtectionConfiguration protection)
    {
        try
        {
            Protection = SharpVisor.Security.ProtectionPolicy.Parse(protection.Policy);
            _protectionText = protection.Policy; // as given: the canonical text leaves out measure-log
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest($"sharpvisor-protection policy: {e.Message}");
        }
    }

    /// <summary>
    /// PUT /cpu-config (or a config file's "cpu-config"): Firecracker's custom CPU template.
    /// CPUID and MSR modifiers are checked here (hex or decimal numbers, registers eax..edx, "0b"
    /// bitmaps of 0/1/x) and applied by the accelerator to every vCPU at InstanceStart, which
    /// fails if the accelerator lacks a leaf or an MSR the template names. kvm_capabilities are
    /// refused with the reason (SharpVisor checks the capabilities it needs itself); the aarch64
    /// fields too. An empty template clears a previous one.
    /// </summary>
    public void SetCpuConfiguration(CpuConfiguration template)
    {
        if (template.RegModifiers is { Count: > 0 } || template.VcpuFeatures is { Count: > 0 })
        {
            throw ApiException.BadRequest("reg_modifiers and vcpu_features are aarch64 CPU template fields; SharpVisor runs x86_64 guests");
        }

        if (template.KvmCapabilities is { Count: > 0 })
        {
            throw ApiException.BadRequest("kvm_capabilities cannot be required or dropped in SharpVisor: it checks the KVM capabilities it needs itself (and the emulator has none); cpuid_modifiers and msr_modifiers are supported");
        }

        var cpuid = new List<SharpVisor.Machine.CpuTemplates.CpuidModifier>();
        foreach (CpuidLeafModifier leaf in template.CpuidModifiers ?? [])
        {
            uint leafNumber = ParseTemplateNumber(leaf.Leaf, "cpuid_modifiers leaf");
            uint subleaf = ParseTemplateNumber(leaf.Subleaf, "cpuid_modifiers subleaf");
            foreach (CpuidRegisterModifier register in leaf.Modifiers)
            {
                SharpVisor.Machine.CpuTemplates.CpuidRegister name = register.Register switch
                {
                    "eax" => SharpVisor.Machine.CpuTemplates.CpuidRegister.Eax,
                    "ebx" => SharpVisor.Machine.CpuTemplates.CpuidRegister.Ebx,
                    "ecx" => SharpVisor.Machine.CpuTemplates.CpuidRegister.Ecx,
                    "edx" => SharpVisor.Machine.CpuTemplates.CpuidRegister.Edx,
                    _ => throw ApiException.BadRequest($"cpuid_modifiers register '{register.Register}' is not one of eax, ebx, ecx, edx"),
                };
                cpuid.Add(new(leafNumber, subleaf, name, ParseTemplateBits(register.Bitmap, 32, $"cpuid leaf 0x{leafNumber:x} {register.Register}")));
            }
        }

        var msrs = new List<SharpVisor.Machine.CpuTemplates.MsrModifier>();
        foreach (MsrModifier msr in template.MsrModifiers ?? [])
        {
            uint index = ParseTemplateNumber(msr.Addr, "msr_modifiers addr");
            msrs.Add(new(index, ParseTemplateBits(msr.Bitmap, 64, $"MSR 0x{index:x}")));
        }

        var parsed = new SharpVisor.Machine.CpuTemplates.CpuTemplate { Cpuid = cpuid, Msrs = msrs };
        CpuTemplate = parsed.IsEmpty ? null : parsed;
    }

    /// <summary>The CPU template PUT /cpu-config set; null: the accelerator's CPU as it is.</summary>
    public SharpVisor.Machine.CpuTemplates.CpuTemplate? CpuTemplate { get; private set; }

    private static uint ParseTemplateNumber(string text, string field)
    {
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(text.AsSpan(2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out uint value)
            : uint.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value);
        return ok ? value : throw ApiException.BadRequest($"{field} '{text}' is not a 32-bit number (0x-prefixed hex or decimal)");
    }

    private static SharpVisor.Machine.CpuTemplates.TemplateBits ParseTemplateBits(string text, int width, string what)
        => SharpVisor.Machine.CpuTemplates.TemplateBits.TryParse(text, width, out var bits, out string error)
            ? bits
            : throw ApiException.BadRequest($"{what}: {error}");

    /// <summary>PUT /mmds/config, when given: the NICs the MMDS answers on, its address and version.</summary>
    public SharpVisor.Host.Firecracker.Mmds.MmdsConfiguration? Mmds { get; private set; }

    /// <summary>The MMDS address of <see cref="Mmds"/>, parsed.</summary>
    public System.Net.IPAddress? MmdsAddress { get; private set; }

    /// <summary>PUT /mmds/config: checked against the NICs configured so far, as Firecracker does.</summary>
    public void SetMmdsConfiguration(SharpVisor.Host.Firecracker.Mmds.MmdsConfiguration config)
    {
        if (config.Version is not (null or "V1" or "V2"))
        {
            throw ApiException.BadRequest($"version '{config.Version}' is not one of V1, V2");
        }

        if (config.ImdsCompat == true)
        {
            throw ApiException.BadRequest("imds_compat is not supported by SharpVisor yet: the MMDS answers as Firecracker's does by default");
        }

        if (config.NetworkInterfaces.Count == 0)
        {
            throw ApiException.BadRequest("network_interfaces must name at least one network interface");
        }

        if (config.NetworkInterfaces.Any(id => _networkInterfaces.All(n => n.IfaceId != id)))
        {
            throw ApiException.BadRequest("The list of network interface IDs that allow forwarding MMDS requests is empty or contains an ID that does not correspond to any existing network interface.");
        }

        string text = config.Ipv4Address ?? SharpVisor.Host.Firecracker.Mmds.MmdsConfiguration.DefaultIpv4Address;
        if (!System.Net.IPAddress.TryParse(text, out System.Net.IPAddress? address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
            || address.GetAddressBytes() is not [169, 254, ..])
        {
            throw ApiException.BadRequest($"The MMDS IPv4 address '{text}' is not a link-local IPv4 address (169.254.0.0/16).");
        }

        Mmds = config;
        MmdsAddress = address;
    }

    /// <summary>The virtio-vsock device, when PUT /vsock asked for one.</summary>
    public Vsock? Vsock { get; private set; }

    /// <summary>
    /// PUT /vsock: one virtio-vsock device (a second PUT replaces it, as in Firecracker). The
    /// socket is bound at InstanceStart; its directory must exist now.
    /// </summary>
    public void SetVsock(Vsock vsock)
    {
        if (vsock.GuestCid is < 3 or > uint.MaxValue - 1)
        {
            throw ApiException.BadRequest($"guest_cid {vsock.GuestCid} is out of range (3-{uint.MaxValue - 1}; 0-2 are reserved)");
        }

        RequireAbsolutePath(vsock.UdsPath, "uds_path");
        // sun_path holds 107 bytes and a NUL; uds_path also gets "_PORT" appended for guest connections.
        if (System.Text.Encoding.UTF8.GetByteCount(vsock.UdsPath) > 96)
        {
            throw ApiException.BadRequest($"uds_path '{vsock.UdsPath}' is too long for a Unix socket with a port suffix (at most 96 bytes)");
        }

        if (Path.GetDirectoryName(vsock.UdsPath) is { Length: > 0 } directory && !Directory.Exists(directory))
        {
            throw ApiException.BadRequest($"uds_path '{vsock.UdsPath}': the directory '{directory}' does not exist");
        }

        if (File.Exists(vsock.UdsPath) && !IsUnixSocket(vsock.UdsPath))
        {
            throw ApiException.BadRequest($"uds_path '{vsock.UdsPath}' exists and is not a socket");
        }

        Vsock = vsock;
    }

    /// <summary>Builds a configuration from a config file's sections, validating each as its PUT would.</summary>
    public static VmConfiguration FromFull(FullVmConfiguration full)
    {
        // "logger" and "metrics" are the VMM's, not the machine's: VmmServer applies them.
        RefuseUnsupportedSection(full.MemoryHotplug, "memory-hotplug");
        RefuseUnsupportedSection(full.MmdsConfig, "mmds-config");
        RefuseUnsupportedSection(full.Pmem, "pmem");

        var configuration = new VmConfiguration();
        if (full.MachineConfig is not null)
        {
            configuration.SetMachineConfig(full.MachineConfig);
        }

        if (full.BootSource is not null)
        {
            configuration.SetBootSource(full.BootSource);
        }

        foreach (Drive drive in full.Drives ?? [])
        {
            configuration.PutDrive(drive.DriveId, drive);
        }

        foreach (NetworkInterface nic in full.NetworkInterfaces ?? [])
        {
            configuration.PutNetworkInterface(nic.IfaceId, nic);
        }

        if (full.Balloon is not null)
        {
            configuration.SetBalloon(full.Balloon);
        }

        if (full.Entropy is not null)
        {
            configuration.SetEntropy(full.Entropy);
        }

        if (full.Vsock is not null)
        {
            configuration.SetVsock(full.Vsock);
        }

        if (full.Protection is not null)
        {
            configuration.SetProtection(full.Protection);
        }

        if (full.CpuConfig is { } cpuConfig)
        {
            configuration.SetCpuConfiguration(ReadCpuTemplateFile(cpuConfig));
        }

        return configuration;
    }

    /// <summary>A config file's "cpu-config": as in Firecracker, the path of a CPU template JSON file.</summary>
    private static CpuConfiguration ReadCpuTemplateFile(System.Text.Json.JsonElement section)
    {
        if (section.ValueKind != System.Text.Json.JsonValueKind.String)
        {
            throw ApiException.BadRequest("cpu-config is the path of a CPU template JSON file (as in Firecracker), not an object");
        }

        string path = section.GetString()!;
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ApiException.BadRequest($"cpu-config: cannot read the CPU template '{path}': {e.Message}");
        }

        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(bytes, FirecrackerJsonContext.Default.CpuConfiguration)
                ?? throw ApiException.BadRequest($"cpu-config: the CPU template '{path}' is null");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw ApiException.BadRequest($"cpu-config: the CPU template '{path}' is not valid: {e.Message}");
        }
    }

    public FullVmConfiguration ToFull() => new()
    {
        BootSource = BootSource,
        MachineConfig = MachineConfig with
        {
            Smt = MachineConfig.Smt ?? false,
            TrackDirtyPages = MachineConfig.TrackDirtyPages ?? false,
            HugePages = MachineConfig.HugePages ?? "None",
        },
        Drives = _drives.ToList(),
        NetworkInterfaces = _networkInterfaces.ToList(),
        Balloon = Balloon,
        Entropy = Entropy,
        Vsock = Vsock,
        Protection = _protectionText is null ? null : new ProtectionConfiguration { Policy = _protectionText },
    };

    public void SetBootSource(BootSource source)
    {
        RequireExistingFile(source.KernelImagePath, "kernel_image_path");
        if (source.InitrdPath is not null)
        {
            RequireExistingFile(source.InitrdPath, "initrd_path");
        }

        if (source.BootArgs is { } args)
        {
            if (args.Contains('\0'))
            {
                throw ApiException.BadRequest("boot_args must not contain NUL characters");
            }

            if (System.Text.Encoding.UTF8.GetByteCount(args) > MaxCommandLineBytes)
            {
                throw ApiException.BadRequest($"boot_args is longer than {MaxCommandLineBytes} bytes");
            }
        }

        BootSource = source;
    }

    public void SetMachineConfig(MachineConfig config)
    {
        ValidateMachineConfig(config);
        if (Balloon is not null && Balloon.AmountMib > config.MemSizeMib)
        {
            throw ApiException.BadRequest($"mem_size_mib {config.MemSizeMib} is smaller than the balloon's amount_mib {Balloon.AmountMib}");
        }

        MachineConfig = config;
    }

    public void PatchMachineConfig(MachineConfigurationPatch patch) => SetMachineConfig(new MachineConfig
    {
        VcpuCount = patch.VcpuCount ?? MachineConfig.VcpuCount,
        MemSizeMib = patch.MemSizeMib ?? MachineConfig.MemSizeMib,
        Smt = patch.Smt ?? MachineConfig.Smt,
        CpuTemplate = patch.CpuTemplate ?? MachineConfig.CpuTemplate,
        TrackDirtyPages = patch.TrackDirtyPages ?? MachineConfig.TrackDirtyPages,
        HugePages = patch.HugePages ?? MachineConfig.HugePages,
    });

    public void PutDrive(string pathId, Drive drive)
    {
        RequireDeviceId(pathId, "drive_id");
        if (drive.DriveId != pathId)
        {
            throw ApiException.BadRequest($"drive_id '{drive.DriveId}' in the body does not match '{pathId}' in the path");
        }

        if (drive.Socket is not null)
        {
            throw ApiException.BadRequest("vhost-user drives (socket) are not supported; give path_on_host");
        }

        if (drive.PathOnHost is null)
        {
            throw ApiException.BadRequest("path_on_host is required");
        }

        RequireAbsolutePath(drive.PathOnHost, "path_on_host");
        if (!IsDriverDomainDevice(drive))
        {
            Refuse(ConfigurationRules.DiskImage(drive.PathOnHost, "path_on_host"));
        }

        ToRateLimit(drive.RateLimiter, "rate_limiter");
        if (drive.CacheType is not (null or "Unsafe" or "Writeback"))
        {
            throw ApiException.BadRequest($"cache_type '{drive.CacheType}' is not one of Unsafe, Writeback");
        }

        if (drive.IoEngine is not (null or "Sync"))
        {
            throw ApiException.BadRequest($"io_engine '{drive.IoEngine}' is not supported (SharpVisor has the Sync engine)");
        }

        if (drive.IsRootDevice && _drives.Any(d => d.IsRootDevice && d.DriveId != pathId))
        {
            throw ApiException.BadRequest("a root device is already configured; only one drive can be the root device");
        }

        if (_drives.Any(d => d.DriveId != pathId && ConfigurationRules.SameImage(d.PathOnHost!, drive.PathOnHost)))
        {
            throw ApiException.BadRequest($"path_on_host '{drive.PathOnHost}' is already the image of another drive");
        }

        int index = _drives.FindIndex(d => d.DriveId == pathId);
        if (index < 0 && _drives.Count >= MaxDevices)
        {
            throw ApiException.BadRequest($"at most {MaxDevices} drives are supported");
        }

        if (index >= 0)
        {
            _drives[index] = drive;
        }
        else
        {
            _drives.Add(drive);
        }
    }

    public void PutNetworkInterface(string pathId, NetworkInterface nic)
    {
        RequireDeviceId(pathId, "iface_id");
        if (nic.IfaceId != pathId)
        {
            throw ApiException.BadRequest($"iface_id '{nic.IfaceId}' in the body does not match '{pathId}' in the path");
        }

        Refuse(ConfigurationRules.TapName(nic.HostDevName, "host_dev_name"));
        if (nic.GuestMac is not null)
        {
            Refuse(ConfigurationRules.Mac(nic.GuestMac, "guest_mac"));
        }

        if (nic.Mtu is < 68 or > 65535)
        {
            throw ApiException.BadRequest($"mtu {nic.Mtu} is out of range (68-65535)");
        }

        ToRateLimit(nic.RxRateLimiter, "rx_rate_limiter");
        ToRateLimit(nic.TxRateLimiter, "tx_rate_limiter");
        if (_networkInterfaces.Any(n => n.IfaceId != pathId && n.HostDevName == nic.HostDevName))
        {
            throw ApiException.BadRequest($"host_dev_name '{nic.HostDevName}' is already used by another interface");
        }

        if (nic.GuestMac is not null && _networkInterfaces.Any(n => n.IfaceId != pathId && string.Equals(n.GuestMac, nic.GuestMac, StringComparison.OrdinalIgnoreCase)))
        {
            throw ApiException.BadRequest($"guest_mac '{nic.GuestMac}' is already used by another interface");
        }

        int index = _networkInterfaces.FindIndex(n => n.IfaceId == pathId);
        if (index < 0 && _networkInterfaces.Count >= MaxDevices)
        {
            throw ApiException.BadRequest($"at most {MaxDevices} network interfaces are supported");
        }

        if (index >= 0)
        {
            _networkInterfaces[index] = nic;
        }
        else
        {
            _networkInterfaces.Add(nic);
        }
    }

    public void SetBalloon(Balloon balloon)
    {
        ValidateBalloon(balloon);
        Balloon = balloon;
    }

    /// <summary>Everything <see cref="SetBalloon"/> checks, without changing anything.</summary>
    public void ValidateBalloon(Balloon balloon)
    {
        ValidateBalloonTarget(balloon.AmountMib);
        ValidateStatisticsInterval(balloon.StatsPollingIntervalS ?? 0);
        if (balloon.FreePageHinting == true || balloon.FreePageReporting == true)
        {
            throw ApiException.BadRequest("free page hinting and reporting are not supported");
        }
    }

    public static void ValidateStatisticsInterval(int seconds) => Refuse(ConfigurationRules.StatisticsInterval(seconds, "stats_polling_interval_s"));

    /// <summary>A new balloon target must fit in the guest's memory.</summary>
    public void ValidateBalloonTarget(long amountMib)
    {
        if (amountMib < 0 || amountMib > MachineConfig.MemSizeMib)
        {
            throw ApiException.BadRequest($"amount_mib {amountMib} is out of range (0-{MachineConfig.MemSizeMib}, the guest's memory)");
        }
    }

    /// <summary>
    /// What InstanceStart builds, as the one machine-configuration model every front end fills;
    /// throws when the configuration is not complete. The VMM adds what is its own (serial output,
    /// log, Xen mode, boot timer, the MMDS interceptor).
    /// </summary>
    public Vmm.MachineConfiguration ToMachineConfiguration(string name, string accelerator)
    {
        BootSource source = BootSource ?? throw ApiException.BadRequest("no boot source: PUT /boot-source before InstanceStart");
        AcceleratorKind kind = accelerator switch
        {
            "auto" => AcceleratorKind.Auto,
            "kvm" => AcceleratorKind.Kvm,
            "emulator" => AcceleratorKind.Emulator,
            _ => throw ApiException.BadRequest($"accelerator '{accelerator}' is not one of kvm, emulator, auto"),
        };

        // Like Firecracker: the root drive comes first (/dev/vda) and the command line says so.
        List<Drive> ordered = _drives.OrderByDescending(d => d.IsRootDevice).ToList();
        string commandLine = source.BootArgs ?? "";
        Drive? root = ordered.FirstOrDefault(d => d.IsRootDevice);
        if (root is not null)
        {
            string device = root.Partuuid is { Length: > 0 } uuid ? $"PARTUUID={uuid}" : "/dev/vda";
            commandLine = $"{commandLine} root={device} {(root.IsReadOnly == true ? "ro" : "rw")}".Trim();
        }

        return new Vmm.MachineConfiguration
        {
            Name = name,
            KernelPath = source.KernelImagePath,
            InitrdPath = source.InitrdPath,
            CommandLine = commandLine,
            VcpuCount = MachineConfig.VcpuCount,
            MemorySize = (ulong)MachineConfig.MemSizeMib << 20,
            Accelerator = kind,

            // The drive id is the disk's serial.
            Disks = ordered.Select(d => ToDisk(d)).ToArray(),
            NetworkInterfaces = _networkInterfaces.Select(n => new NetworkInterfaceConfiguration
            {
                Id = n.IfaceId,
                TapName = n.HostDevName,
                Mac = n.GuestMac is { } mac ? ParseMac(mac) : null,

                // mtu is Firecracker's hint to the guest; virtio-net here offers no VIRTIO_NET_F_MTU, so it is not carried.
                RxRateLimit = ToRateLimit(n.RxRateLimiter, "rx_rate_limiter"),
                TxRateLimit = ToRateLimit(n.TxRateLimiter, "tx_rate_limiter"),
            }).ToArray(),
            Balloon = Balloon is { } balloon
                ? new BalloonConfiguration
                {
                    InitialTargetMib = balloon.AmountMib,
                    DeflateOnOom = balloon.DeflateOnOom,
                    StatisticsIntervalSeconds = balloon.StatsPollingIntervalS ?? 0,
                }
                : null,

            // Like Firecracker, no entropy device unless PUT /entropy asked for one.
            EntropyDevice = Entropy is not null,
            Vsock = Vsock is null ? null : new VsockConfiguration((ulong)Vsock.GuestCid, Vsock.UdsPath),
            Protection = Protection,
            CpuTemplate = CpuTemplate,
        };
    }

    /// <summary>A Firecracker drive as the machine's disk: path, read-only, id (the serial), cache type and rate limiter.</summary>
    public static DiskConfiguration ToDisk(Drive drive) =>
        new(drive.PathOnHost!, drive.IsReadOnly == true, drive.DriveId, drive.CacheType == "Unsafe" ? DiskCacheMode.Unsafe : DiskCacheMode.Writeback)
        {
            RateLimit = ToRateLimit(drive.RateLimiter, "rate_limiter"),
            XenBackendDomain = drive.XenBackendDomain,
        };

    private static MacAddress ParseMac(string text)
    {
        try
        {
            return MacAddress.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest($"guest_mac: {e.Message}");
        }
    }

    private static void ValidateMachineConfig(MachineConfig config)
    {
        if (config.VcpuCount is < 1 or > MaxVcpus)
        {
            throw ApiException.BadRequest($"vcpu_count {config.VcpuCount} is out of range (1-{MaxVcpus})");
        }

        long minMib = (long)(GuestMemory.MinRamSize >> 20);
        long maxMib = (long)(GuestMemory.MaxRamSize >> 20);
        if (config.MemSizeMib < minMib || config.MemSizeMib > maxMib)
        {
            throw ApiException.BadRequest($"mem_size_mib {config.MemSizeMib} is out of range ({minMib}-{maxMib})");
        }

        if (config.Smt == true)
        {
            throw ApiException.BadRequest("smt is not supported; each vCPU is a core");
        }

        if (config.CpuTemplate is not (null or "None"))
        {
            throw ApiException.BadRequest($"cpu_template '{config.CpuTemplate}' is not supported (only None)");
        }

        if (config.HugePages is not (null or "None"))
        {
            throw ApiException.BadRequest($"huge_pages '{config.HugePages}' is not supported (only None)");
        }
    }

    private static void Refuse(string? reason)
    {
        if (reason is not null)
        {
            throw ApiException.BadRequest(reason);
        }
    }

    /// <summary>
    /// xl's <c>phy:/dev/xvdX,…,backend=NAME</c>: a disk of the guest driver domain NAME (docs/xen.md,
    /// "A Linux guest as the driver domain"), not a file of the host; that domain's VMM checks it.
    /// </summary>
    private static bool IsDriverDomainDevice(Drive drive) =>
        drive.XenBackend is not null && ConfigurationRules.IsDriverDomainDevice(drive.PathOnHost!);

    private static void RequireAbsolutePath(string path, string field)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw ApiException.BadRequest($"{field} is empty");
        }

        if (!Path.IsPathFullyQualified(path))
        {
            throw ApiException.BadRequest($"{field} '{path}' is not an absolute path");
        }
    }

    private static void RequireExistingFile(string path, string field)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw ApiException.BadRequest($"{field} is empty");
        }

        if (!Path.IsPathFullyQualified(path))
        {
            throw ApiException.BadRequest($"{field} '{path}' is not an absolute path");
        }

        if (!File.Exists(path))
        {
            throw ApiException.BadRequest($"{field} '{path}' does not exist or is not a file");
        }
    }

    private static unsafe bool IsUnixSocket(string path)
    {
        Interop.FileStat stat;
        return Interop.LibC.Stat(path, &stat) == 0 && (stat.Mode & Interop.FileStat.TypeMask) == 0xC000;
    }

    private static void RequireDeviceId(string id, string field) => Refuse(ConfigurationRules.DeviceId(id, field));

    /// <summary>Checks a Firecracker rate limiter and turns it into the machine's; null stays null.</summary>
    public static RateLimitConfiguration? ToRateLimit(RateLimiter? limiter, string field)
    {
        if (limiter is null)
        {
            return null;
        }

        var configuration = new RateLimitConfiguration(ToBucket(limiter.Bandwidth), ToBucket(limiter.Ops));
        Refuse(configuration.Problem(field));
        return configuration;
    }

    /// <summary>
    /// PATCH /drives/{id} before boot: a new backing file and/or rate limiter, checked as PUT checks them.
    /// Returns the updated drive.
    /// </summary>
    public Drive PatchDrive(string pathId, PartialDrive patch)
    {
        Drive current = FindDrive(pathId, patch.DriveId);
        Drive updated = current with
        {
            PathOnHost = patch.PathOnHost ?? current.PathOnHost,
            RateLimiter = patch.RateLimiter ?? current.RateLimiter,
        };
        PutDrive(pathId, updated);
        return updated;
    }

    /// <summary>Checks a PATCH /drives body against the configured drive without changing anything.</summary>
    public Drive FindDrive(string pathId, string bodyId)
    {
        if (bodyId != pathId)
        {
            throw ApiException.BadRequest($"drive_id '{bodyId}' in the body does not match '{pathId}' in the path");
        }

        return _drives.FirstOrDefault(d => d.DriveId == pathId) ?? throw ApiException.BadRequest($"no drive '{pathId}' is configured");
    }

    /// <summary>PATCH /network-interfaces/{id}: new rate limiters (before boot: the configuration only).</summary>
    public NetworkInterface PatchNetworkInterface(string pathId, PartialNetworkInterface patch)
    {
        if (patch.IfaceId != pathId)
        {
            throw ApiException.BadRequest($"iface_id '{patch.IfaceId}' in the body does not match '{pathId}' in the path");
        }

        NetworkInterface current = _networkInterfaces.FirstOrDefault(n => n.IfaceId == pathId) ?? throw ApiException.BadRequest($"no network interface '{pathId}' is configured");
        ToRateLimit(patch.RxRateLimiter, "rx_rate_limiter");
        ToRateLimit(patch.TxRateLimiter, "tx_rate_limiter");
        NetworkInterface updated = current with
        {
            RxRateLimiter = patch.RxRateLimiter ?? current.RxRateLimiter,
            TxRateLimiter = patch.TxRateLimiter ?? current.TxRateLimiter,
        };
        _networkInterfaces[_networkInterfaces.IndexOf(current)] = updated;
        return updated;
    }

    /// <summary>Checks a new path_on_host as PUT /drives does.</summary>
    public static void ValidateDrivePath(string path)
    {
        RequireAbsolutePath(path, "path_on_host");
        Refuse(ConfigurationRules.DiskImage(path, "path_on_host"));
    }

    /// <summary>Records what a PATCH changed on the running machine, so GET /vm/config shows it.</summary>
    public void RecordDrive(Drive drive) => _drives[_drives.FindIndex(d => d.DriveId == drive.DriveId)] = drive;

    private static TokenBucketConfiguration? ToBucket(TokenBucket? bucket) =>
        bucket is null ? null : new TokenBucketConfiguration(bucket.Size, bucket.OneTimeBurst ?? 0, bucket.RefillTime);

    private static void RefuseUnsupportedSection(System.Text.Json.JsonElement? section, string name)
    {
        if (section is { ValueKind: not System.Text.Json.JsonValueKind.Null })
        {
            throw ApiException.BadRequest($"the '{name}' section is not supported by SharpVisor");
        }
    }
}
