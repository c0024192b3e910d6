using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SharpVisor.Host.Client;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Http;
using SharpVisor.Host.Migration;

namespace SharpVisor.Host.Tests.Migration;

/// <summary>
/// `sharpvisor migrate` between two sharpvisord daemons on this machine (the destination with
/// --migrate-listen on loopback), real `sharpvisor vmm --accel emulator` processes and the
/// Multiboot test kernel printing "tick N" with a disk on a path both see: a disk the destination
/// does not see is refused with one line and the source ticks on; then the domain moves, the
/// source daemon forgets it and the destination's ticks go on without a boot.
/// </summary>
public sealed partial class DaemonMigrationTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);

    [GeneratedRegex(@"tick (\d+)")]
    private static partial Regex TickPattern();

    [Fact]
    public async Task ADomainMovesToTheOtherDaemonAndTicksOn()
    {
        await using DaemonTestHost source = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher());
        await using DaemonTestHost destination = await DaemonTestHost.StartAsync(SharpVisorCommand.Launcher(), migrationListen: "127.0.0.1:0");
        string target = $"127.0.0.1:{destination.Server!.MigrationEndpoint!.Port}";
        string disk = source.Directory.File("shared.img");
        File.WriteAllBytes(disk, new byte[1 << 20]);
        CreateDomainRequest request = source.Request("emu", bootArgs: "loop=200000", memoryMib: 16, kernel: TestKernels.MultibootHello) with { Accelerator = "emulator" };
        request = request with { Config = request.Config with { Drives = [new Drive { DriveId = "data", PathOnHost = disk, IsRootDevice = false, IsReadOnly = false }] } };
        await source.Client.CreateAsync(request);
        await WaitForTickAsync(source.Client, "emu", 2);

        // The destination does not see the disk: one clear line, and the source runs on.
        File.Move(disk, disk + ".away");
        (string last, List<string> lines) = await MigrateAsync(source, "emu", target);
        File.Move(disk + ".away", disk);
        Assert.Equal($"error: the destination refused: disk image {disk} does not exist on the destination (the disk must be on a path both hosts see)", last);
        int before = await LastTickAsync(source.Client, "emu");
        await WaitForTickAsync(source.Client, "emu", before + 1);
        Assert.Empty(await destination.Client.ListAsync());

        (last, lines) = await MigrateAsync(source, "emu", target);
        Assert.StartsWith(MigrationLines.Migrated, last);
        Assert.Contains(lines, l => l.StartsWith("round 1: sent 4096 pages", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("stop-and-copy:", StringComparison.Ordinal));
        Assert.DoesNotContain(await source.Client.ListAsync(), d => d.Name == "emu");
        DomainInfo moved = (await destination.Client.ListAsync()).Single();
        Assert.Equal(("emu", "running", 16L), (moved.Name, moved.State, moved.MemoryMib));

        int handedOver = await LastTickAsync(source.Client, "emu");
        await Eventually.TrueAsync(async () => (await Ticks(destination.Client, "emu")).Length >= 2, s_timeout, "the migrated domain ticks");
        int[] ticks = await Ticks(destination.Client, "emu");
        string history = Encoding.UTF8.GetString(await destination.Client.ConsoleHistoryAsync("emu"));
        Assert.DoesNotContain("Hello from a multiboot kernel", history);
        Assert.True(ticks[0] > before, $"the destination started at tick {ticks[0]}; the source had printed {before} before the migration");
        Assert.Equal(ticks[0] + 1, ticks[1]);
        await destination.Client.DestroyAsync("emu");
        _ = handedOver;
    }

    /// <summary>What `sharpvisor migrate` does: the daemon's streamed answer, line by line.</summary>
    private static async Task<(string Last, List<string> Lines)> MigrateAsync(DaemonTestHost host, string domain, string target)
    {
        using HttpClient http = UnixSocketHttp.CreateClient(host.Client.SocketPath, Timeout.InfiniteTimeSpan);
        var lines = new List<string>();
        string last = await MigrationLines.RelayAsync(http, HttpMethod.Post, $"/domains/{domain}/migrate", new Dictionary<string, object> { ["destination"] = target, ["downtime_ms"] = 100 }, line =>
        {
            lines.Add(line);
            return Task.CompletedTask;
        }, CancellationToken.None);
        return (last, lines);
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
