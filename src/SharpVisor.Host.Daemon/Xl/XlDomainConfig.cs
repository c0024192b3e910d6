using System.Globalization;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Host.Xl;

/// <summary>
/// What an xl.cfg file asks for, in SharpVisor's terms: the settings of xl.cfg(5) that
/// SharpVisor runs, turned into the same <see cref="CreateDomainRequest"/> a Firecracker JSON
/// configuration becomes. A setting it cannot honour is refused by name, never ignored.
/// </summary>
public sealed record XlDomainConfig
{
    private static readonly string[] s_known =
        ["name", "type", "builder", "kernel", "ramdisk", "cmdline", "extra", "root", "memory", "maxmem", "vcpus", "maxvcpus", "disk", "vif", "on_poweroff", "on_reboot", "on_crash", "protect"];

    public string? Name { get; init; }

    /// <summary>The domain type: "pvh", "hvm" (an HVM domain boots its kernel directly, as xl's direct kernel boot), "pv", or "driver" (SharpVisor's blkback in a domain of its own).</summary>
    public required string Type { get; init; }

    public required string Kernel { get; init; }

    public string? Ramdisk { get; init; }

    public string CommandLine { get; init; } = "";

    public int MemoryMib { get; init; } = 128;

    public int Vcpus { get; init; } = 1;

    public IReadOnlyList<XlDisk> Disks { get; init; } = [];

    public IReadOnlyList<XlVif> Vifs { get; init; } = [];

    /// <summary>SharpVisor's `protect = "kernel,cr-pin,..."`: kernel runtime protection (docs/security.md), checked; null when unset.</summary>
    public string? Protect { get; init; }

    /// <summary>Reads the settings; relative paths are taken from <paramref name="directory"/> (xl: the current directory).</summary>
    public static XlDomainConfig From(XlConfigFile file, string directory)
    {
        foreach ((string key, XlConfigFile.XlValue value) in file.Settings)
        {
            if (!s_known.Contains(key))
            {
                throw new XlConfigException($"line {value.Line}: '{key}' is not a setting SharpVisor supports ({string.Join(", ", s_known)})");
            }
        }

        string type = String(file, "type") ?? (String(file, "builder") == "hvm" ? "hvm" : "pvh");
        if (type is not ("pvh" or "hvm" or "pv" or "driver"))
        {
            throw new XlConfigException($"type = \"{type}\" is not a domain type (pvh, hvm, pv, driver)");
        }

        if (type == "driver")
        {
            // SharpVisor's driver domain: its kernel is SharpVisor's blkback (docs/xen.md, "Driver domains").
            foreach (string key in new[] { "kernel", "ramdisk", "cmdline", "extra", "root", "disk", "vif", "protect" })
            {
                if (file.Settings.ContainsKey(key))
                {
                    throw new XlConfigException($"line {file.Settings[key].Line}: a driver domain (type = \"driver\") takes no '{key}': it runs SharpVisor's blkback for the domains that name it with backend=");
                }
            }

            return new XlDomainConfig { Name = String(file, "name"), Type = type, Kernel = "" };
        }

        int memory = Number(file, "memory") ?? 128;
        int? maxmem = Number(file, "maxmem");
        if (maxmem is { } max && max != memory)
        {
            throw new XlConfigException($"maxmem = {max} differs from memory = {memory}: populate-on-demand and boot-time ballooning are not supported; set them equal (mem-set lowers it later)");
        }

        int vcpus = Number(file, "vcpus") ?? 1;
        if (Number(file, "maxvcpus") is { } maxVcpus && maxVcpus != vcpus)
        {
            throw new XlConfigException($"maxvcpus = {maxVcpus} differs from vcpus = {vcpus}: vCPU hotplug is not supported");
        }

        RequireAction(file, "on_poweroff", "preserve", "a powered-off domain stays listed as shutdown until `sharpvisor destroy`");
        RequireAction(file, "on_reboot", "restart", "a rebooting domain is restarted");
        RequireAction(file, "on_crash", "preserve", "a crashed domain stays listed as crashed until `sharpvisor destroy`");

        string commandLine = string.Join(' ', new[]
        {
            String(file, "root") is { } root ? $"root={root}" : null,
            String(file, "extra") ?? String(file, "cmdline"),
        }.Where(s => !string.IsNullOrEmpty(s)));
        if (String(file, "extra") is not null && String(file, "cmdline") is not null)
        {
            throw new XlConfigException("both 'cmdline' and 'extra' are set: use one");
        }

        IReadOnlyList<string> disks = List(file, "disk");
        string? protect = null;
        if (String(file, "protect") is { } policy)
        {
            try
            {
                _ = SharpVisor.Security.ProtectionPolicy.Parse(policy);
                protect = policy; // as written: the canonical text leaves out measure-log
            }
            catch (ArgumentException e)
            {
                throw new XlConfigException($"line {file.Settings["protect"].Line}: protect = \"{policy}\": {e.Message}");
            }
        }

        return new XlDomainConfig
        {
            Name = String(file, "name"),
            Type = type,
            Kernel = FullPath(String(file, "kernel") ?? throw new XlConfigException("'kernel' is required (SharpVisor boots the kernel directly; no bootloader)"), directory),
            Ramdisk = String(file, "ramdisk") is { } ramdisk ? FullPath(ramdisk, directory) : null,
            CommandLine = commandLine,
            MemoryMib = memory,
            Vcpus = vcpus,
            Disks = disks.Select((spec, index) =>
            {
                XlDisk disk = XlDisk.Parse(spec, index);
                return disk with { Path = FullPath(disk.Path, directory) };
            }).ToArray(),
            Vifs = List(file, "vif").Select(XlVif.Parse).ToArray(),
            Protect = protect,
        };
    }

    /// <summary>The daemon's create request: the Firecracker-style configuration plus the Xen type.</summary>
    public CreateDomainRequest ToCreateRequest(string? name, string? accelerator) => new()
    {
        Name = name ?? Name,
        Accelerator = accelerator,
        Type = Type,
        Config = Type == "driver" ? new FullVmConfiguration() : new FullVmConfiguration
        {
            BootSource = new BootSource { KernelImagePath = Kernel, InitrdPath = Ramdisk, BootArgs = CommandLine },
            MachineConfig = new MachineConfig { VcpuCount = Vcpus, MemSizeMib = MemoryMib },
            Drives = Disks.Select(d => new Drive { DriveId = d.Vdev, PathOnHost = d.Path, IsReadOnly = d.ReadOnly, IsRootDevice = false, XenBackend = d.Backend }).ToList(),
            NetworkInterfaces = Vifs.Select((v, i) => new NetworkInterface { IfaceId = $"eth{i}", HostDevName = v.TapName, GuestMac = v.Mac }).ToList(),
            Protection = Protect is null ? null : new ProtectionConfiguration { Policy = Protect },
        },
    };

    private static string? String(XlConfigFile file, string key)
    {
        if (!file.Settings.TryGetValue(key, out XlConfigFile.XlValue? value))
        {
            return null;
        }

        if (value.Scalar is null || value.IsNumber)
        {
            throw new XlConfigException($"line {value.Line}: '{key}' takes a quoted string");
        }

        return value.Scalar;
    }

    private static int? Number(XlConfigFile file, string key)
    {
        if (!file.Settings.TryGetValue(key, out XlConfigFile.XlValue? value))
        {
            return null;
        }

        if (!value.IsNumber || !int.TryParse(value.Scalar, NumberStyles.Integer, CultureInfo.InvariantCulture, out int number) || number < 1)
        {
            throw new XlConfigException($"line {value.Line}: '{key}' takes a positive whole number");
        }

        return number;
    }

    private static IReadOnlyList<string> List(XlConfigFile file, string key)
    {
        if (!file.Settings.TryGetValue(key, out XlConfigFile.XlValue? value))
        {
            return [];
        }

        return value.List ?? throw new XlConfigException($"line {value.Line}: '{key}' takes a list: {key} = [ '...', '...' ]");
    }

    private static void RequireAction(XlConfigFile file, string key, string supported, string what)
    {
        string? action = String(file, key);
        if (action is not null && action != supported)
        {
            throw new XlConfigException($"{key} = \"{action}\" is not supported: SharpVisor does \"{supported}\" ({what})");
        }
    }

    private static string FullPath(string path, string directory) => Path.GetFullPath(path, directory);
}
