using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor sched</c>.</summary>
public static class SchedCommand
{
    public static Command Create() => DomainCommands.Sched();
}
