namespace SharpVisor.TestSupport;

/// <summary>
/// Can this host boot the default guest, and if not, why? SharpVisor's own emulator boots it on
/// any x86-64 host, so only a default guest that is not built is a reason.
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

    private static string? Probe() =>
        File.Exists(Kernel) && File.Exists(Initrd)
            ? null
            : $"the default guest is not built ({Path.GetDirectoryName(Kernel)}); run scripts/build-guest.sh";
}
