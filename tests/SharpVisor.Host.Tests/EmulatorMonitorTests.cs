using System.Text.RegularExpressions;
using SharpVisor.Emulator.Accelerator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Machine;

namespace SharpVisor.Host.Tests;

/// <summary>
/// One domain's VMM on the software accelerator, with the Multiboot test kernel: the same
/// devices, boot code and ACPI power button as on KVM, and pause freezing the emulator's time.
/// </summary>
public sealed partial class EmulatorMonitorTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [GeneratedRegex(@"tick (\d+)")]
    private static partial Regex TickPattern();

    [Theory]
    [InlineData(MmuMode.Shadow)]
    [InlineData(MmuMode.Nested)]
    public void TheMultibootKernelRunsOnTheEmulator(MmuMode mode)
    {
        var serial = new CapturedOutput();
        using VirtualMachineMonitor vmm = Create("exit=5", serial, mode);

        RunOutcome outcome = vmm.Run(s_timeout);

        Assert.Equal((MachineStopReason.DebugExit, (5 << 1) | 1), (outcome.Reason, outcome.ExitStatus));
        Assert.Contains("Hello from a multiboot kernel", serial.Text);
        Assert.Contains("cmdline: exit=5", serial.Text);
        Assert.Equal(mode, Assert.IsType<EmulatorAccelerator>(vmm.Accelerator.Accelerator).MmuMode);
        Assert.True(vmm.ExitCounts()["io"] > 0);
        Assert.True(vmm.ExitCounts()["instructions"] > 1000);
    }

    [Fact]
    public async Task ThePowerButtonMakesTheLoopingGuestEnterS5()
    {
        var serial = new CapturedOutput();
        using VirtualMachineMonitor vmm = Create("loop=200000", serial);
        Task<RunOutcome> run = Task.Run(() => vmm.Run(s_timeout));
        WaitForTick(serial, 2);

        vmm.PressPowerButton();

        RunOutcome outcome = await run.WaitAsync(s_timeout);
        Assert.Equal((MachineStopReason.PowerOff, 0), (outcome.Reason, outcome.ExitStatus));
        Assert.Contains("S5", outcome.Detail);
        Assert.Contains("power button: powering off", serial.Text);
    }

    [Fact]
    public async Task PauseParksTheVcpusAndFreezesVirtualTimeUntilResume()
    {
        var serial = new CapturedOutput();
        using VirtualMachineMonitor vmm = Create("loop=200000", serial);
        var platform = Assert.IsType<EmulatorVirtualMachine>(vmm.Machine).Platform;
        Task<RunOutcome> run = Task.Run(() => vmm.Run(s_timeout));
        WaitForTick(serial, 1);

        Assert.True(vmm.Pause(TimeSpan.FromSeconds(5)));
        long frozenAt = platform.Time.NowNanoseconds;
        int ticksAtPause = LastTick(serial);
        await Task.Delay(300);

        Assert.True(platform.Time.IsPaused);
        Assert.Equal(frozenAt, platform.Time.NowNanoseconds);
        Assert.Equal(ticksAtPause, LastTick(serial));

        vmm.Resume();
        Assert.False(platform.Time.IsPaused);
        WaitForTick(serial, ticksAtPause + 2);
        vmm.Stop("test is done");

        RunOutcome outcome = await run.WaitAsync(s_timeout);
        Assert.Equal((MachineStopReason.PowerOff, "test is done"), (outcome.Reason, outcome.Detail));
    }

    [Fact]
    public void AnMmuModeWithKvmIsRefused()
    {
        var configuration = new MachineConfiguration
        {
            KernelPath = TestKernels.MultibootHello,
            Accelerator = AcceleratorKind.Kvm,
            Mmu = MmuKind.Nested,
        };

        var e = Assert.Throws<ArgumentException>(() => VirtualMachineMonitor.Create(configuration));
        Assert.Contains("--mmu nested", e.Message);
    }

    private static VirtualMachineMonitor Create(string commandLine, Stream serial, MmuMode mmu = MmuMode.Shadow) =>
        VirtualMachineMonitor.Create(new MachineConfiguration
        {
            KernelPath = TestKernels.MultibootHello,
            CommandLine = commandLine,
            MemorySize = 16UL << 20,
            Accelerator = AcceleratorKind.Emulator,
            Mmu = mmu.ToMmuKind(),
            SerialOutput = serial,
        });

    private static int LastTick(CapturedOutput serial)
    {
        MatchCollection ticks = TickPattern().Matches(serial.Text);
        return ticks.Count == 0 ? 0 : int.Parse(ticks[^1].Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void WaitForTick(CapturedOutput serial, int tick) =>
        Assert.True(SpinWait.SpinUntil(() => LastTick(serial) >= tick, s_timeout), $"no tick {tick}; serial: {serial.Text}");
}
