using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;

namespace SharpVisor.Host.Tests.Snapshots;

/// <summary>
/// save, restore and snapshot through sharpvisord with real `sharpvisor vmm --accel emulator`
/// processes and the Multiboot test kernel printing "tick N": saved, the domain is gone; restored
/// under a new name, it ticks on from where it was, without booting again.
/// </summary>
public sealed partial class DaemonSnapshotTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [GeneratedRegex(@"tick (\d+)")]
    private static partial Regex TickPattern();

    [Fact]
    public async Task ASavedDomainIsRestoredUnderANewNameAndTicksOn()
    {
        await using DaemonTestHost host = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher());
        await host.Client.CreateAsync(host.Request("emu", bootArgs: "loop=200000", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "emulator" });
        await WaitForTickAsync(host.Client, "emu", 3);
        string state = host.Directory.File("emu.state");

        DomainInfo kept = await host.Client.SnapshotAsync("emu", host.Directory.File("emu-live.state"), diff: false);
        Assert.Equal("running", kept.State);
        await host.Client.SnapshotAsync("emu", host.Directory.File("emu-diff.state"), diff: true);

        int before = await LastTickAsync(host.Client, "emu");
        await host.Client.SaveAsync("emu", state, keep: false);
        Assert.True(File.Exists(state) && File.Exists(state + ".mem"));
        Assert.DoesNotContain(await host.Client.ListAsync(), d => d.Name == "emu");

        DomainInfo restored = await host.Client.RestoreAsync(state, "emu2");
        Assert.Equal(("emu2", "running", "emulator", 16L), (restored.Name, restored.State, restored.Accelerator, restored.MemoryMib));
        await Eventually.TrueAsync(async () => (await Ticks(host.Client, "emu2")).Length >= 2, s_timeout, "emu2 ticks");
        int[] ticks = await Ticks(host.Client, "emu2");
        string history = Encoding.UTF8.GetString(await host.Client.ConsoleHistoryAsync("emu2"));
        Assert.DoesNotContain("Hello from a multiboot kernel", history);
        Assert.True(ticks[0] >= before, $"the restored domain started at tick {ticks[0]}, the saved one had printed {before}");
        Assert.Equal(ticks[0] + 1, ticks[1]);
        await host.Client.DestroyAsync("emu2");
    }

    private static async Task<int[]> Ticks(DaemonClient client, string domain)
    {
        string history = Encoding.UTF8.GetString(await client.ConsoleHistoryAsync(domain));
        return TickPattern().Matches(history).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
    }

    private static async Task<int> LastTickAsync(DaemonClient client, string domain)
    {
        try
        {
            int[] ticks = await Ticks(client, domain);
            return ticks.Length == 0 ? 0 : ticks[^1];
        }
        catch (DaemonException)
        {
            return 0;
        }
    }

    private static Task WaitForTickAsync(DaemonClient client, string domain, int tick) =>
        Eventually.TrueAsync(async () => await LastTickAsync(client, domain) >= tick, s_timeout, $"{domain} prints tick {tick}");
}
