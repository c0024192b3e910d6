using System.CommandLine;
using System.Globalization;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor protect DOMAIN [POLICY]</c>: a running domain's kernel protection through the
/// daemon (docs/security.md). Without a policy: its policy, lock, measurements, violations by
/// kind and the recent violations. With one: raises it (log → enforce, more frequent measurement,
/// pins before the lock); lowering is refused.
/// </summary>
public static class ProtectCommand
{
    public static Command Create()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "Domain name or id" };
        var policy = new Argument<string?>("POLICY") { Description = "A stricter policy: kernel[,cr-pin][,msr-pin][,measure=SECONDS][,mode=enforce]", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("protect", "Show or raise a running domain's kernel protection (lowering is refused).") { domain, policy };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string name = result.GetValue(domain)!;
            ProtectionStatus status = result.GetValue(policy) is { } raised
                ? await client.RaiseProtectionAsync(name, raised, cancel)
                : await client.GetProtectionAsync(name, cancel);
            Console.WriteLine(Describe(name, status));
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    private static string Describe(string domain, ProtectionStatus status)
    {
        var lines = new List<string>
        {
            $"domain {domain}: protection {status.Policy}",
            status.Locked ? $"locked        at {status.LockedAt:O}" : "locked        not yet",
            $"golden        {status.GoldenMeasurement ?? "-"}",
            $"latest        {status.LatestMeasurement ?? "-"}",
            "violations    " + string.Join(' ', status.Violations.Select(v => string.Create(CultureInfo.InvariantCulture, $"{v.Key}={v.Value}"))),
        };
        lines.AddRange(status.RecentViolations.Select(e =>
            $"  {e.Time:O} kind={e.Kind} {(e.Vcpu < 0 ? "device" : $"vcpu={e.Vcpu} rip={e.Rip}")} target={e.Target} value={e.Value} action={(e.Blocked ? "blocked" : "logged")}"));
        return string.Join(Environment.NewLine, lines);
    }
}
