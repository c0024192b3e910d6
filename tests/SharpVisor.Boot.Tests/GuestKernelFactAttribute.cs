namespace SharpVisor.Boot.Tests;

/// <summary>A test that needs the default guest kernel (scripts/build-guest.sh); skipped loudly when it is absent.</summary>
public sealed class GuestKernelFactAttribute : FactAttribute
{
    public GuestKernelFactAttribute()
    {
        if (!File.Exists(Path))
        {
            Skip = $"SKIPPED — NEEDS THE DEFAULT GUEST KERNEL: {Path} does not exist (build it with scripts/build-guest.sh)";
        }
    }

    public static string CacheDirectory => Environment.GetEnvironmentVariable("SHARPVISOR_CACHE") is { Length: > 0 } cache ? cache : "/var/cache/sharpvisor";

    public static string Path => System.IO.Path.Combine(CacheDirectory, "guest", "current", "vmlinuz");
}
