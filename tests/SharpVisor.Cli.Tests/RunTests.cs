using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>`sharpvisor run` end to end on KVM with the Multiboot test kernel.</summary>
public sealed class RunTests
{
    [KvmFact]
    public void MultibootKernelPrintsAndExitsWithItsDebugExitStatus()
    {
        Assert.True(File.Exists(DefaultGuestFiles.MultibootHello), $"missing {DefaultGuestFiles.MultibootHello} (scripts/build-test-kernels.sh builds it)");
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=33", "--memory", "64M"],
            timeout: TimeSpan.FromSeconds(120));
        Assert.Equal((33 << 1) | 1, result.ExitCode);
        Assert.Contains("Hello from a multiboot kernel", result.StandardOutput);
        Assert.Contains("cmdline: exit=33", result.StandardOutput);
        Assert.Contains("debug exit", result.StandardError);
    }

    [KvmFact]
    public void SerialOutputCanGoToAFile()
    {
        string log = Path.Combine(Path.GetTempPath(), $"sharpvisor-serial-{Guid.NewGuid():N}.log");
        try
        {
            SharpVisorProcess.Result result = SharpVisorProcess.Run(
                ["run", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=0", "--memory", "64M", "--serial", $"file:{log}"],
                timeout: TimeSpan.FromSeconds(120));
            Assert.Equal(1, result.ExitCode);
            Assert.Contains("Hello from a multiboot kernel", File.ReadAllText(log));
            Assert.DoesNotContain("Hello", result.StandardOutput);
        }
        finally
        {
            File.Delete(log);
        }
    }

    [KvmFact]
    public void TimeoutStopsALoopingGuest()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "loop", "--memory", "64M", "--timeout", "3"],
            timeout: TimeSpan.FromSeconds(120));
        Assert.Equal(124, result.ExitCode);
        Assert.Contains("timeout", result.StandardError);
    }

    [KvmFact]
    public void AutoSaysWhichAcceleratorAndWhy()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=1", "--memory", "64M"],
            timeout: TimeSpan.FromSeconds(120));
        string line = Assert.Single(result.StandardError.Split('\n'), l => l.Contains("accelerator:"));
        Assert.Contains("kvm", line);
        if (Directory.Exists("/sys/module/kvm_pvm"))
        {
            Assert.Contains("PVM", line);
        }
    }

    [Fact]
    public void EveryCommandHasHelp()
    {
        SharpVisorProcess.Result root = SharpVisorProcess.Run(["--help"]);
        Assert.Equal(0, root.ExitCode);
        Assert.Contains("run", root.StandardOutput);
        SharpVisorProcess.Result run = SharpVisorProcess.Run(["run", "--help"]);
        Assert.Equal(0, run.ExitCode);
        foreach (string option in new[] { "--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--accel", "--serial", "--timeout" })
        {
            Assert.Contains(option, run.StandardOutput);
        }
    }
}
