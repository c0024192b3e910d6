using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.TestSupport;

namespace SharpVisor.Embedding.Tests;

/// <summary>
/// What an application does with the embedding API, through nothing but its public surface:
/// build a machine, start it, read its console as a stream, pause, resume, ask it to shut
/// down, stop it, and learn how it ended. The Multiboot test kernel keeps these fast.
/// </summary>
public sealed partial class EmbeddingApiTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [GeneratedRegex(@"tick (\d+)")]
    private static partial Regex TickPattern();

    [Fact]
    public async Task AKernelRunsAndItsConsoleIsAStreamThatEndsWithTheGuest()
    {
        using var vm = VirtualMachine.Create(Options("exit=5"));
        Assert.Equal(VirtualMachineState.Created, vm.State);
        Assert.StartsWith("emulator", vm.AcceleratorDescription, StringComparison.Ordinal);

        vm.Start();
        var reader = new StreamReader(vm.Console, Encoding.ASCII);
        string output = await reader.ReadToEndAsync().WaitAsync(s_timeout);
        VirtualMachineExit exit = await vm.WaitForExitAsync().WaitAsync(s_timeout);

        Assert.Contains("Hello from a multiboot kernel", output);
        Assert.Contains("cmdline: exit=5", output);
        Assert.Equal(new VirtualMachineExit(ExitReason.DebugExit, (5 << 1) | 1, exit.Detail), exit);
        Assert.Equal(VirtualMachineState.Stopped, vm.State);
        Assert.True(vm.Counters()["io"] > 0);
        Assert.Equal(0, vm.ConsoleBytesDropped);
        Assert.Throws<InvalidOperationException>(vm.Start);
    }

    [Fact]
    public async Task PauseFreezesTheGuestResumeLetsItGoOnAndStopEndsIt()
    {
        using var vm = VirtualMachine.Create(Options("loop=200000"));
        var console = new ConsoleCapture(vm.Console);
        vm.Start();
        await console.WaitForAsync(() => LastTick(console.Text) >= 1);

        Assert.True(vm.Pause());
        Assert.Equal(VirtualMachineState.Paused, vm.State);

        // Frozen means no guest instruction runs. (The console is not the measure: what the guest
        // wrote just before the pause may still be on its way to the reader.)
        long frozenAt = vm.Counters()["instructions"];
        await Task.Delay(300);
        Assert.Equal(frozenAt, vm.Counters()["instructions"]);
        Assert.Throws<InvalidOperationException>(() => vm.Pause());
        int pausedAt = LastTick(console.Text);

        vm.Resume();
        Assert.Equal(VirtualMachineState.Running, vm.State);
        await console.WaitForAsync(() => LastTick(console.Text) >= pausedAt + 2);

        vm.Stop();
        VirtualMachineExit exit = await vm.WaitForExitAsync().WaitAsync(s_timeout);
        Assert.Equal((ExitReason.PowerOff, 0), (exit.Reason, exit.ExitStatus));
        Assert.Contains("embedding application", exit.Detail);
        Assert.Equal(VirtualMachineState.Stopped, vm.State);
        vm.Stop(); // a stopped machine stays stopped, quietly
    }

    [Fact]
    public async Task AShutdownRequestIsThePowerButtonAndTheGuestPowersOff()
    {
        await using var vm = VirtualMachine.Create(Options("loop=200000"));
        var console = new ConsoleCapture(vm.Console);
        vm.Start();
        await console.WaitForAsync(() => LastTick(console.Text) >= 1);

        vm.RequestShutdown();

        VirtualMachineExit exit = await vm.WaitForExitAsync().WaitAsync(s_timeout);
        Assert.Equal((ExitReason.PowerOff, 0), (exit.Reason, exit.ExitStatus));
        Assert.Contains("S5", exit.Detail);
        await console.WaitForAsync(() => console.Text.Contains("power button: powering off", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DisposingARunningMachineStopsItAndAnUnstartedOneEndsCleanly()
    {
        var running = VirtualMachine.Create(Options("loop=200000"));
        running.Start();
        running.Dispose();
        Assert.Equal(ExitReason.PowerOff, (await running.WaitForExitAsync().WaitAsync(s_timeout)).Reason);
        Assert.Throws<ObjectDisposedException>(running.Start);

        var unstarted = VirtualMachine.Create(Options("exit=0"));
        unstarted.Dispose();
        Assert.Contains("before it was started", (await unstarted.WaitForExitAsync()).Detail);
    }

    [Fact]
    public void WhatCannotWorkIsAOneLineError()
    {
        Assert.Contains("does-not-exist", Refused(Options("") with { KernelPath = "/does-not-exist/vmlinuz" }));
        Assert.Contains("vCPU count 0", Refused(Options("") with { VcpuCount = 0 }));
        Assert.Contains("memory size 0 MiB", Refused(Options("") with { MemoryMib = 0 }));
        Assert.Contains("six hex bytes", Refused(Options("") with { NetworkInterfaces = [new NetworkInterfaceOptions("tap0", "not-a-mac")] }));
        Assert.Contains("/nope.img", Refused(Options("") with { Disks = [new DiskOptions("/nope.img")] }));

        static string Refused(VirtualMachineOptions options)
        {
            var e = Assert.Throws<VirtualMachineException>(() => VirtualMachine.Create(options));
            Assert.DoesNotContain('\n', e.Message);
            return e.Message;
        }
    }

    private static VirtualMachineOptions Options(string commandLine) => new()
    {
        KernelPath = TestKernels.MultibootHello,
        CommandLine = commandLine,
        MemoryMib = 16,
        Accelerator = Accelerator.Emulator,
    };

    private static int LastTick(string text)
    {
        MatchCollection ticks = TickPattern().Matches(text);
        return ticks.Count == 0 ? 0 : int.Parse(ticks[^1].Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
