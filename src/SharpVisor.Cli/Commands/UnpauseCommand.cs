using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor unpause</c>.</summary>
public static class UnpauseCommand
{
    public static Command Create() => DomainCommands.Unpause();
}
