using System.CommandLine;
using System.Globalization;
using System.Text;
using SharpVisor.Host.Daemon;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor top</c>: live per-domain CPU, memory and exits per second by reason, like xentop.</summary>
public static class TopCommand
{
    public static Command Create()
    {
        var delay = new Option<double>("--delay", "-d") { Description = "Seconds between updates", DefaultValueFactory = _ => 1.0 };
        var iterations = new Option<int>("--iterations", "-n") { Description = "Stop after this many updates (0 = until Ctrl-C)", DefaultValueFactory = _ => 0 };
        var batch = new Option<bool>("--batch", "-b") { Description = "Print one table per update instead of redrawing the screen" };
        var command = new Command("top", "Show live per-domain CPU, memory and exit rates.") { delay, iterations, batch };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            double seconds = result.GetValue(delay);
            if (seconds is < 0.1 or > 3600)
            {
                throw new CliException($"--delay {seconds} is out of range (0.1-3600)");
            }

            bool redraw = !result.GetValue(batch) && !Console.IsOutputRedirected;
            int limit = result.GetValue(iterations);
            List<DomainStats> previous = await client.StatsAsync(cancel);
            DateTime previousAt = DateTime.UtcNow;
            for (int round = 1; limit == 0 || round <= limit; round++)
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds), cancel);
                List<DomainStats> current = await client.StatsAsync(cancel);
                DateTime now = DateTime.UtcNow;
                string table = Format(previous, current, (now - previousAt).TotalSeconds);
                Console.Write(redraw ? "\x1b[H\x1b[2J" + table : table + "\n");
                previous = current;
                previousAt = now;
            }

            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    /// <summary>One screen: rates are the difference between two samples over <paramref name="seconds"/>.</summary>
    public static string Format(IReadOnlyList<DomainStats> before, IReadOnlyList<DomainStats> after, double seconds)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"ID",3}  {"NAME",-16} {"STATE",-8} {"CPU%",6} {"RSS(MiB)",8} {"MEM(MiB)",8} {"VCPUS",5} {"EXITS/s",8}  TOP EXIT REASONS (/s)\n");
        foreach (DomainStats d in after)
        {
            DomainStats? old = before.FirstOrDefault(b => b.Id == d.Id);
            double? cpu = d.CpuSeconds is double c && old?.CpuSeconds is double o && seconds > 0 ? Math.Max(0, (c - o) / seconds * 100) : null;
            double Rate(string key) =>
                seconds > 0 ? Math.Max(0, d.Exits.GetValueOrDefault(key) - (old?.Exits.GetValueOrDefault(key) ?? d.Exits.GetValueOrDefault(key))) / seconds : 0;

            // A Xen domain's counters (xen-*: hypercalls, events, grants, bytes) are not exits: a line of their own.
            var rates = d.Exits.Keys
                .Where(k => !k.StartsWith(XenPrefix, StringComparison.Ordinal))
                .Select(k => (Reason: k, Rate: Rate(k)))
                .OrderByDescending(r => r.Rate)
                .ToList();
            string top = string.Join(' ', rates.Where(r => r.Rate > 0).Take(4).Select(r => $"{r.Reason}={r.Rate:0}"));
            text.Append(CultureInfo.InvariantCulture,
                $"{d.Id,3}  {Truncate(d.Name, 16),-16} {d.State,-8} {(cpu is double p ? p.ToString("0.0", CultureInfo.InvariantCulture) : "-"),6} " +
                $"{(d.ResidentBytes is long r ? (r >> 20).ToString(CultureInfo.InvariantCulture) : "-"),8} {d.MemoryMib,8} {d.Vcpus,5} {rates.Sum(x => x.Rate),8:0}  {top}\n");
            if (d.Exits.ContainsKey(XenPrefix + "hypercalls"))
            {
                text.Append(CultureInfo.InvariantCulture, $"{"",5}xen/s: {string.Join(' ', s_xenColumns.Select(c => $"{c.Label}={Rate(XenPrefix + c.Counter):0}"))}\n");
            }
        }

        return text.ToString();
    }

    private const string XenPrefix = "xen-";

    /// <summary>What `top` shows of a Xen domain, by the VMM's counter names (docs/xen.md, "Metrics").</summary>
    private static readonly (string Label, string Counter)[] s_xenColumns =
    [
        ("hypercalls", "hypercalls"),
        ("upcalls", "upcalls"),
        ("evtchn-sends", "evtchn-sends"),
        ("grant-copies", "grant-copies"),
        ("grant-maps", "grant-maps"),

        // The guest's own GNTTABOP_map_grant_ref / unmap_grant_ref operations (docs/xen.md, "Grant mapping").
        ("map-ops", "grant-map-ops"),
        ("unmap-ops", "grant-unmap-ops"),
        ("xenstore", "xenstore-requests"),

        // Inter-domain: sends to another domain's port, grant copies and maps of another domain's pages.
        ("idd-sends", "interdomain-sends"),
        ("idd-copies", "grant-copy-foreign"),
        ("idd-maps", "grant-maps-foreign"),
    ];

    private static string Truncate(string text, int width) => text.Length <= width ? text : text[..width];
}
