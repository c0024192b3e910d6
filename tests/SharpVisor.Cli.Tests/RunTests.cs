using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>`sharpvisor run` end to end on KVM and on the emulator with the Multiboot test kernel.</summary>
public sealed class RunTests
{
    [KvmFact]
    public void MultibootKernelPrintsAndExitsWithItsDebugExitStatus()
    {
        Assert.True(File.Exists(DefaultGuestFiles.MultibootHello), $"missing {DefaultGuestFiles.MultibootHello} (scripts/build-test-kernels.sh builds it)");
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--accel", "kvm", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=33", "--memory", "64M"],
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
                ["run", "--accel", "kvm", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=0", "--memory", "64M", "--serial", $"file:{log}"],
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
            ["run", "--accel", "kvm", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "loop", "--memory", "64M", "--timeout", "3"],
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
        Assert.Equal((1 << 1) | 1, result.ExitCode);
        string line = Assert.Single(result.StandardError.Split('\n'), l => l.Contains("accelerator:"));
        if (Directory.Exists("/sys/module/kvm_pvm"))
        {
            // PVM-backed KVM emulates guest kernel code at ~1 µs per instruction: the emulator is faster.
            Assert.Contains("emulator (shadow paging)", line);
            Assert.Contains("PVM", line);
        }
        else
        {
            Assert.Contains("kvm", line);
        }
    }

    [Fact]
    public void TheMultibootKernelRunsOnTheEmulator()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--accel", "emulator", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=33", "--memory", "64M"],
            timeout: TimeSpan.FromSeconds(120));
        Assert.Equal((33 << 1) | 1, result.ExitCode);
        Assert.Contains("Hello from a multiboot kernel", result.StandardOutput);
        Assert.Contains("cmdline: exit=33", result.StandardOutput);
        Assert.Contains("accelerator: emulator (shadow paging): as asked", result.StandardError);
        Assert.Contains("debug exit", result.StandardError);
    }

    /// <summary>Every tier runs a guest to the same end; always makes tier 1 compile every block first; native encodes hot blocks to x86-64 code.</summary>
    [Theory]
    [InlineData("interpreter")]
    [InlineData("always")]
    [InlineData("native")]
    public void TierOptionRunsTheGuest(string tier)
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--accel", "emulator", "--tier", tier, "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=2", "--memory", "64M"],
            timeout: TimeSpan.FromSeconds(120));
        Assert.Equal((2 << 1) | 1, result.ExitCode);
    }

    [Fact]
    public void NestedPagingIsChosenWithMmu()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--accel", "emulator", "--mmu", "nested", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=2", "--memory", "64M"],
            timeout: TimeSpan.FromSeconds(120));
        Assert.Equal((2 << 1) | 1, result.ExitCode);
        Assert.Contains("accelerator: emulator (nested paging)", result.StandardError);
    }

    [Fact]
    public void AutoWithoutAKvmDeviceRunsOnTheEmulatorAndSaysWhy()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "exit=3", "--memory", "64M"],
            environment: new Dictionary<string, string> { ["SHARPVISOR_KVM_DEVICE"] = "/nonexistent/kvm" },
            timeout: TimeSpan.FromSeconds(120));
        Assert.Equal((3 << 1) | 1, result.ExitCode);
        string line = Assert.Single(result.StandardError.Split('\n'), l => l.Contains("accelerator:"));
        Assert.Contains("emulator (shadow paging): KVM is unavailable: /nonexistent/kvm not found", line);
    }

    [Fact]
    public void TheEmulatorTimeoutStopsALoopingGuest()
    {
        SharpVisorProcess.Result result = SharpVisorProcess.Run(
            ["run", "--accel", "emulator", "--kernel", DefaultGuestFiles.MultibootHello, "--cmdline", "loop=1000000", "--memory", "64M", "--timeout", "2"],
            timeout: TimeSpan.FromSeconds(120));
        Assert.Equal(124, result.ExitCode);
        Assert.Contains("tick 1", result.StandardOutput);
        Assert.Contains("timeout", result.StandardError);
    }

    [Fact]
    public void EveryCommandHasHelp()
    {
        SharpVisorProcess.Result root = SharpVisorProcess.Run(["--help"]);
        Assert.Equal(0, root.ExitCode);
        Assert.Contains("run", root.StandardOutput);
        SharpVisorProcess.Result run = SharpVisorProcess.Run(["run", "--help"]);
        Assert.Equal(0, run.ExitCode);
        foreach (string option in new[] { "--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--accel", "--mmu", "--serial", "--timeout" })
        {
            Assert.Contains(option, run.StandardOutput);
        }
    }
}
