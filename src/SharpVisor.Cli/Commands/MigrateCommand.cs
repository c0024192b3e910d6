using System.CommandLine;
using SharpVisor.Host.Daemon;
using SharpVisor.Host.Http;
using SharpVisor.Host.Migration;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor migrate DOMAIN HOST[:PORT]</c>: live migration to another host's daemon (docs/migration.md).</summary>
public static class MigrateCommand
{
    public static Command Create()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "Domain name or id" };
        var destination = new Argument<string>("HOST[:PORT]") { Description = $"The destination daemon's migration listener (sharpvisor daemon --migrate-listen; port {MigrationEndpoint.DefaultPort} by default)" };
        var downtime = new Option<int>("--downtime-ms") { Description = "Pre-copy until the rest fits this pause at the measured bandwidth", DefaultValueFactory = _ => MigrationOptions.DefaultDowntimeMs };
        var command = new Command("migrate", "Live-migrate a running domain to another daemon; it is destroyed here once it runs there.") { domain, destination, downtime };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            try
            {
                MigrationEndpoint.Parse(result.GetValue(destination)!);
            }
            catch (ArgumentException e)
            {
                return Toolstack.Fail(e.Message);
            }

            using HttpClient http = UnixSocketHttp.CreateClient(client.SocketPath, Timeout.InfiniteTimeSpan);
            var body = new Dictionary<string, object> { ["destination"] = result.GetValue(destination)!, ["downtime_ms"] = result.GetValue(downtime) };
            string? error = null;
            string last = await MigrationLines.RelayAsync(http, HttpMethod.Post, $"/domains/{Uri.EscapeDataString(result.GetValue(domain)!)}/migrate", body, line =>
            {
                if (line.StartsWith(MigrationLines.Error, StringComparison.Ordinal))
                {
                    error = line[MigrationLines.Error.Length..];
                }
                else
                {
                    Console.WriteLine(line);
                }

                return Task.CompletedTask;
            }, cancel);
            return last.StartsWith(MigrationLines.Migrated, StringComparison.Ordinal) ? ExitCodes.Success : Toolstack.Fail(error ?? last);
        }, cancel));
        return command;
    }
}
