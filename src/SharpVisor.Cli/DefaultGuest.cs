namespace SharpVisor.Cli;

/// <summary>
/// The default guest built by scripts/build-guest.sh from Debian packages: the stock cloud
/// kernel and an initramfs with busybox and the virtio modules.
/// </summary>
public static class DefaultGuest
{
    public const string CommandLine = "console=ttyS0 reboot=k panic=-1 no_timer_check";

    /// <summary>Under --xen: the kernel's console is Xen's PV console (hvc0), on the same terminal as the serial one.</summary>
    /// <remarks>`xen_legacy_crash`: a panic reports SCHEDOP_shutdown(SHUTDOWN_crash), so it ends as a crash, not a reboot.</remarks>
    public const string XenCommandLine = "console=hvc0 reboot=k panic=-1 xen_legacy_crash";

    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("SHARPVISOR_CACHE") is { Length: > 0 } cache ? cache : "/var/cache/sharpvisor";

    public static string Directory => Path.Combine(CacheDirectory, "guest", "current");

    public static string KernelPath => Path.Combine(Directory, "vmlinuz");

    public static string InitrdPath => Path.Combine(Directory, "initrd.img");

    /// <summary>Throws a clear error when the default guest has not been built.</summary>
    public static void EnsurePresent()
    {
        if (!File.Exists(KernelPath) || !File.Exists(InitrdPath))
        {
            throw new CliException($"the default guest is not built ({Directory}); run scripts/build-guest.sh or give --kernel");
        }
    }
}
