using System.Diagnostics;
using Xunit;

namespace SharpVisor.TestSupport;

/// <summary>
/// The Multiboot test kernel, built by scripts/build-test-kernels.sh once per test run into a
/// cache beside the tests, so a test run from another checkout (another kernel version) never
/// swaps it underneath the running tests.
/// </summary>
public static class TestKernels
{
    private static readonly Lazy<string> s_multibootHello = new(Build);

    /// <summary>
    /// With "loop=N" on its command line it prints "tick K" every N busy-loop iterations, forever,
    /// powering off on the ACPI power button (unless "noacpi") and resetting on Ctrl-Alt-Del
    /// (unless "nokbd").
    /// </summary>
    public static string MultibootHello => s_multibootHello.Value;

    private static string Build()
    {
        string? root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "scripts", "build-test-kernels.sh")))
        {
            root = Path.GetDirectoryName(root);
        }

        Assert.True(root is not null, "scripts/build-test-kernels.sh not found above the test directory");
        var start = new ProcessStartInfo("bash", [Path.Combine(root!, "scripts", "build-test-kernels.sh")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["SHARPVISOR_CACHE"] = Path.Combine(AppContext.BaseDirectory, "kernel-cache");
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(120)), "build-test-kernels.sh took more than 2 minutes");
        Assert.True(process.ExitCode == 0, $"build-test-kernels.sh failed: {stderr.Result}");
        return stdout.Result.Split('\n').Single(line => line.EndsWith("/multiboot-hello.elf", StringComparison.Ordinal));
    }
}
