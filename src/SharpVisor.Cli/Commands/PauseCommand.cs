using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor pause</c>.</summary>
public static class PauseCommand
{
    public static Command Create() => DomainCommands.Pause();
}
