using System.CommandLine;
using System.Text.Json;
using SharpVisor.Host.Daemon;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor list</c>: the domains, like <c>xl list</c>.</summary>
public static class ListCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var command = new Command("list", "List domains: id, name, state, vCPUs, memory, uptime, accelerator.") { json };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            List<DomainInfo> domains = await client.ListAsync(cancel);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(domains, DaemonJsonContext.Default.ListDomainInfo));
                return ExitCodes.Success;
            }

            Console.WriteLine(Format(domains));
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static string Format(IReadOnlyList<DomainInfo> domains)
    {
        int nameWidth = Math.Max(4, domains.Select(d => d.Name.Length).DefaultIfEmpty(0).Max());
        var lines = new List<string> { $"{"ID",3}  {"NAME".PadRight(nameWidth)}  {"STATE",-8}  {"VCPUS",5}  {"MEM(MiB)",8}  {"UPTIME",10}  {"TYPE",-4}  ACCEL" };
        foreach (DomainInfo d in domains)
        {
            string line = $"{d.Id,3}  {d.Name.PadRight(nameWidth)}  {d.State,-8}  {d.Vcpus,5}  {d.MemoryMib,8}  {Toolstack.FormatUptime(d.UptimeSeconds),10}  {d.Type,-4}  {d.Accelerator}";
            if (d.Detail is { Length: > 0 } detail && d.State is "shutdown" or "crashed")
            {
                line += $"  ({detail.Split('\n')[0]})";
            }

            lines.Add(line);
        }

        return string.Join('\n', lines);
    }
}
