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
            var rates = d.Exits
                .Select(e => (Reason: e.Key, Rate: seconds > 0 ? Math.Max(0, e.Value - (old?.Exits.GetValueOrDefault(e.Key) ?? e.Value)) / seconds : 0))
                .OrderByDescending(r => r.Rate)
                .ToList();
            string top = string.Join(' ', rates.Where(r => r.Rate > 0).Take(4).Select(r => $"{r.Reason}={r.Rate:0}"));
            text.Append(CultureInfo.InvariantCulture,
                $"{d.Id,3}  {Truncate(d.Name, 16),-16} {d.State,-8} {(cpu is double p ? p.ToString("0.0", CultureInfo.InvariantCulture) : "-"),6} " +
                $"{(d.ResidentBytes is long r ? (r >> 20).ToString(CultureInfo.InvariantCulture) : "-"),8} {d.MemoryMib,8} {d.Vcpus,5} {rates.Sum(x => x.Rate),8:0}  {top}\n");
        }

        return text.ToString();
    }

    private static string Truncate(string text, int width) => text.Length <= width ? text : text[..width];
}
