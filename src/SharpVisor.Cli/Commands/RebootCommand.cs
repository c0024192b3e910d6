using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor reboot</c>.</summary>
public static class RebootCommand
{
    public static Command Create() => DomainCommands.Reboot();
}
