using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor events [DOMAIN] [--count N]</c>: follows the kernel-protection events (violations
/// and measurement mismatches) of a domain, or of every protected running domain, through the
/// daemon: one JSON object a line, as they happen (docs/security.md). Ends with Ctrl-C, after N
/// events, or when the domains' VMMs stop.
/// </summary>
public static class EventsCommand
{
    public static Command Create()
    {
        var domain = new Argument<string?>("DOMAIN") { Description = "Domain name or id (default: every protected running domain)", Arity = ArgumentArity.ZeroOrOne };
        var count = new Option<int?>("--count", "-n") { Description = "Stop after this many events" };
        var command = new Command("events", "Follow kernel-protection violation events as JSON lines.") { domain, count };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            int? limit = result.GetValue(count);
            if (limit is < 1)
            {
                return Toolstack.Fail("--count must be at least 1");
            }

            int seen = 0;
            try
            {
                await client.FollowEventsAsync(result.GetValue(domain), line =>
                {
                    Console.WriteLine(line);
                    Console.Out.Flush();
                    return limit is not { } n || ++seen < n;
                }, cancel);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                // Ctrl-C: following ends.
            }

            return ExitCodes.Success;
        }, cancel));
        return command;
    }
}
