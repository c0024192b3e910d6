using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor destroy</c>.</summary>
public static class DestroyCommand
{
    public static Command Create() => DomainCommands.Destroy();
}
