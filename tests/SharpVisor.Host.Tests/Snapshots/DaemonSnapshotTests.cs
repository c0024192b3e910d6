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
        int beforeDiff = await LastTickAsync(host.Client, "emu");
        await host.Client.SnapshotAsync("emu", host.Directory.File("emu-diff.state"), diff: true);
        int afterDiff = await LastTickAsync(host.Client, "emu");
        byte[] baseMemory = File.ReadAllBytes(host.Directory.File("emu-live.state.mem"));

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

        // A diff restores on top of its base (restore --base); alone it is refused with one line.
        DaemonException alone = await Assert.ThrowsAsync<DaemonException>(() => host.Client.RestoreAsync(host.Directory.File("emu-diff.state"), "emu3"));
        Assert.Contains("holds only the diff's pages", alone.Message);
        DomainInfo fromDiff = await host.Client.RestoreAsync(host.Directory.File("emu-diff.state"), "emu3", basePath: host.Directory.File("emu-live.state"));
        Assert.Equal("running", fromDiff.State);
        await Eventually.TrueAsync(async () => (await Ticks(host.Client, "emu3")).Length >= 2, s_timeout, "emu3 ticks");
        int[] diffTicks = await Ticks(host.Client, "emu3");
        Assert.DoesNotContain("Hello from a multiboot kernel", Encoding.UTF8.GetString(await host.Client.ConsoleHistoryAsync("emu3")));
        Assert.InRange(diffTicks[0], beforeDiff, afterDiff + 1); // where the diff was taken, not the save's later tick
        Assert.Equal(diffTicks[0] + 1, diffTicks[1]);
        Assert.Equal(baseMemory, File.ReadAllBytes(host.Directory.File("emu-live.state.mem"))); // the base is left as it was
        Assert.Empty(Directory.GetFiles(host.Runtime.Root, "restore-*.mem"));
        await host.Client.DestroyAsync("emu3");
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
