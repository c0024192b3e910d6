using System.CommandLine;
using SharpVisor.Host.Daemon;

namespace SharpVisor.Cli.Commands;

/// <summary>Builds the one-domain verbs: pause, unpause, shutdown, reboot, destroy, mem-set, vcpu-pin, sched.</summary>
internal static class DomainCommands
{
    public static Command Pause() => Simple("pause", "Pause a domain: its vCPUs stop, its memory stays.", async (client, domain, cancel) =>
    {
        DomainInfo info = await client.PauseAsync(domain, cancel);
        Console.WriteLine($"domain {info.Name} paused");
    });

    public static Command Unpause() => Simple("unpause", "Resume a paused domain.", async (client, domain, cancel) =>
    {
        DomainInfo info = await client.UnpauseAsync(domain, cancel);
        Console.WriteLine($"domain {info.Name} running");
    });

    public static Command Destroy() => Simple("destroy", "Stop a domain at once (no shutdown) and forget it.", async (client, domain, cancel) =>
    {
        await client.DestroyAsync(domain, cancel);
        Console.WriteLine($"domain {domain} destroyed");
    });

    public static Command Shutdown() => PowerCommand("shutdown", "Press the domain's ACPI power button; force it off after the timeout.", reboot: false);

    public static Command Reboot() => PowerCommand("reboot", "Send Ctrl-Alt-Del and boot the domain again once the guest resets; fail after the timeout unless --force.", reboot: true);

    public static Command MemSet()
    {
        var domain = DomainArgument();
        var size = new Argument<string>("SIZE") { Description = "Memory the guest keeps: 256, 256M, 1G (the balloon takes the rest)" };
        var command = new Command("mem-set", "Set a domain's memory target through its balloon (a Xen domain's: XenStore memory/target).") { domain, size };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            long mib = (long)(MemorySize.Parse(result.GetValue(size)!) >> 20);
            DomainInfo info = await client.SetMemoryAsync(result.GetValue(domain)!, mib, cancel);
            Console.WriteLine(DomainTypes.IsXen(info.Type)
                ? $"domain {info.Name}: memory target {mib} MiB (XenStore memory/target, for the guest's balloon driver)"
                : $"domain {info.Name}: memory target {mib} MiB (balloon {info.MemoryMib - mib} MiB)");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static Command VcpuPin()
    {
        var domain = DomainArgument();
        var vcpu = new Argument<string>("VCPU") { Description = "vCPU number, or all" };
        var cpus = new Argument<string>("CPUS") { Description = "Host CPUs: all, 1, 0-1,3" };
        var command = new Command("vcpu-pin", "Pin a domain's vCPU threads to host CPUs.") { domain, vcpu, cpus };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            await client.PinVcpuAsync(result.GetValue(domain)!, result.GetValue(vcpu)!, result.GetValue(cpus)!, cancel);
            Console.WriteLine($"domain {result.GetValue(domain)}: vCPU {result.GetValue(vcpu)} pinned to CPUs {result.GetValue(cpus)}");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static Command Sched()
    {
        var domain = DomainArgument();
        var weight = new Option<int?>("--weight", "-w") { Description = $"Relative CPU share, 1-{DomainSchedule.MaxWeight} (default {DomainSchedule.DefaultWeight})" };
        var cap = new Option<int?>("--cap", "-c") { Description = "Most CPU the domain may use, in percent of one host CPU (0 = no cap)" };
        var command = new Command("sched", "Show or set a domain's credit-scheduler weight and cap (cgroup cpu.weight and cpu.max).") { domain, weight, cap };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string name = result.GetValue(domain)!;
            int? w = result.GetValue(weight);
            int? c = result.GetValue(cap);
            DomainSchedule schedule = w is null && c is null
                ? await client.GetScheduleAsync(name, cancel)
                : await client.SetScheduleAsync(name, new ScheduleRequest { Weight = w, Cap = c }, cancel);
            Console.WriteLine($"{"NAME",-16} {"WEIGHT",6} {"CAP",5}");
            Console.WriteLine($"{name,-16} {schedule.Weight,6} {schedule.Cap,5}");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    private static Argument<string> DomainArgument() => new("DOMAIN") { Description = "Domain name or id" };

    private static Command Simple(string name, string description, Func<Host.Client.DaemonClient, string, CancellationToken, Task> action)
    {
        var domain = DomainArgument();
        var command = new Command(name, description) { domain };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            await action(client, result.GetValue(domain)!, cancel);
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    private static Command PowerCommand(string name, string description, bool reboot)
    {
        var domain = DomainArgument();
        var timeout = new Option<int>("--timeout", "-t")
        {
            Description = reboot ? "Seconds the guest gets to reset" : "Seconds the guest gets before it is forced",
            DefaultValueFactory = _ => ShutdownRequest.DefaultTimeoutSeconds,
        };
        var force = new Option<bool>("--force", "-F")
        {
            Description = "Reset the guest by force when it does not react to Ctrl-Alt-Del in time",
        };
        var command = new Command(name, description) { domain, timeout };
        if (reboot)
        {
            command.Options.Add(force);
        }

        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string target = result.GetValue(domain)!;
            Console.Error.WriteLine($"[sharpvisor] {(reboot ? "rebooting" : "shutting down")} {target} (timeout {result.GetValue(timeout)} s)...");
            ShutdownResult outcome = reboot
                ? await client.RebootAsync(target, result.GetValue(timeout), result.GetValue(force), cancel)
                : await client.ShutdownAsync(target, result.GetValue(timeout), cancel);
            Console.WriteLine(Describe(outcome, reboot));
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    private static string Describe(ShutdownResult outcome, bool reboot)
    {
        string name = outcome.Domain.Name;
        if (reboot && outcome.Domain.State != "running")
        {
            return $"domain {name} is {outcome.Domain.State}: {outcome.Detail}";
        }

        // A forced end says so in its detail ("forced off: ...", "reset by force: ...").
        return $"domain {name} {(reboot ? "rebooted" : "shut down")}: {outcome.Detail}";
    }
}
