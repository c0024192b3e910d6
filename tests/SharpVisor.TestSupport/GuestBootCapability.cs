namespace SharpVisor.TestSupport;

/// <summary>
/// Can this host boot the default guest, and if not, why? It can with hardware-backed KVM, or
/// with SharpVisor's own emulator accelerator once the VMM offers one (AcceleratorKind has an
/// Emulator member). TestSupport sits below the Host layer, so it asks for that type by name
/// from the test's own dependencies rather than referencing it.
/// </summary>
public static class GuestBootCapability
{
    private static readonly Lazy<string?> s_reason = new(Probe);

    /// <summary>Null when the default guest can boot here; else one sentence saying why not.</summary>
    public static string? UnavailableReason => s_reason.Value;

    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("SHARPVISOR_CACHE") is { Length: > 0 } cache ? cache : "/var/cache/sharpvisor";

    public static string Kernel => Path.Combine(CacheDirectory, "guest", "current", "vmlinuz");

    public static string Initrd => Path.Combine(CacheDirectory, "guest", "current", "initrd.img");

    /// <summary>True when the VMM this test runs against has an emulator accelerator.</summary>
    public static bool HasEmulatorAccelerator()
    {
        Type? kind = Type.GetType("SharpVisor.Host.Vmm.AcceleratorKind, SharpVisor.Host", throwOnError: false);
        return kind is { IsEnum: true } && Enum.GetNames(kind).Contains("Emulator");
    }

    /// <summary>Null when /dev/kvm is usable and backed by VT-x/AMD-V; else why not.</summary>
    public static string? HardwareKvmUnavailableReason()
    {
        if (HostCapabilities.KvmUnavailableReason is { } reason)
        {
            return reason;
        }

        if (Directory.Exists("/sys/module/kvm_pvm"))
        {
            return "/dev/kvm is PVM-backed (module kvm_pvm), which runs guest kernel code through an instruction emulator far too slowly to boot Linux";
        }

        string flags = File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : "";
        if (!flags.Contains(" vmx", StringComparison.Ordinal) && !flags.Contains(" svm", StringComparison.Ordinal))
        {
            return "/dev/kvm is not hardware-backed (no vmx or svm CPU flag)";
        }

        return null;
    }

    private static string? Probe()
    {
        if (!File.Exists(Kernel) || !File.Exists(Initrd))
        {
            return $"the default guest is not built ({Path.GetDirectoryName(Kernel)}); run scripts/build-guest.sh";
        }

        if (HasEmulatorAccelerator())
        {
            return null;
        }

        return HardwareKvmUnavailableReason() is { } kvm
            ? $"no accelerator here boots the default guest: {kvm}, and the emulator accelerator is not available (AcceleratorKind has no Emulator member)"
            : null;
    }
}
