using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;

namespace SharpVisor.Host.Tests;

/// <summary>
/// The control plane with a domain on the software accelerator: sharpvisord starts its
/// `sharpvisor vmm --accel emulator` process, which runs, pauses, resumes and shuts down the
/// Multiboot test kernel as a KVM domain would — no /dev/kvm needed.
/// </summary>
public sealed partial class EmulatorDomainTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [GeneratedRegex(@"tick (\d+)")]
    private static partial Regex TickPattern();

    [Fact]
    public async Task AnEmulatedDomainRunsPausesResumesAndShutsDown()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher());
        await host.Client.CreateAsync(host.Request("emu", bootArgs: "loop=200000", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "emulator" });

        DomainInfo info = await host.Client.GetAsync("emu");
        Assert.Equal(("running", "emulator"), (info.State, info.Accelerator));
        await WaitForTickAsync(host.Client, 2);

        await host.Client.PauseAsync("emu");
        await Task.Delay(TimeSpan.FromMilliseconds(300)); // output already on its way to the daemon lands first
        int pausedAt = await LastTickAsync(host.Client);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(pausedAt, await LastTickAsync(host.Client));
        await host.Client.UnpauseAsync("emu");
        await WaitForTickAsync(host.Client, pausedAt + 2);

        ShutdownResult result = await host.Client.ShutdownAsync("emu", 30);

        Assert.True(result.Graceful, result.Detail);
        Assert.Equal("shutdown", result.Domain.State);
        await host.Client.DestroyAsync("emu");
    }

    private static async Task<int> LastTickAsync(DaemonClient client)
    {
        string history = Encoding.UTF8.GetString(await client.ConsoleHistoryAsync("emu"));
        MatchCollection ticks = TickPattern().Matches(history);
        return ticks.Count == 0 ? 0 : int.Parse(ticks[^1].Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static Task WaitForTickAsync(DaemonClient client, int tick) =>
        Eventually.TrueAsync(async () => await LastTickAsync(client) >= tick, s_timeout, $"emu prints tick {tick}");
}
