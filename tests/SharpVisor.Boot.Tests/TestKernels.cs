using System.Diagnostics;

namespace SharpVisor.Boot.Tests;

/// <summary>Runs scripts/build-test-kernels.sh, once per test run, and hands out the kernel paths it printed.</summary>
internal static class TestKernels
{
    private static readonly Lazy<string> s_multibootHello = new(() => Build(cacheDirectory: null).Single(p => p.EndsWith("/multiboot-hello.elf", StringComparison.Ordinal)));

    public static string MultibootHello => s_multibootHello.Value;

    public static string RepositoryRoot
    {
        get
        {
            for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "scripts", "build-test-kernels.sh")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"no scripts/build-test-kernels.sh above {AppContext.BaseDirectory}");
        }
    }

    /// <summary>Runs the build script (into <paramref name="cacheDirectory"/> when given) and returns the paths it printed.</summary>
    public static string[] Build(string? cacheDirectory)
    {
        var start = new ProcessStartInfo("bash", [Path.Combine(RepositoryRoot, "scripts", "build-test-kernels.sh")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (cacheDirectory is not null)
        {
            start.Environment["SHARPVISOR_CACHE"] = cacheDirectory;
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("scripts/build-test-kernels.sh took more than 2 minutes");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/build-test-kernels.sh failed with status {process.ExitCode}: {stderr.Result}");
        }

        return stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }
}
