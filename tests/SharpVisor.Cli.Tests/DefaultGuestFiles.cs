namespace SharpVisor.Cli.Tests;

/// <summary>Paths of artefacts ./test.sh builds before the tests: the default guest and the test kernels.</summary>
public static class DefaultGuestFiles
{
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("SHARPVISOR_CACHE") is { Length: > 0 } cache ? cache : "/var/cache/sharpvisor";

    public static string Kernel => Path.Combine(CacheDirectory, "guest", "current", "vmlinuz");

    public static string Initrd => Path.Combine(CacheDirectory, "guest", "current", "initrd.img");

    public static string MultibootHello => Path.Combine(CacheDirectory, "test-kernels", "multiboot-hello.elf");
}
