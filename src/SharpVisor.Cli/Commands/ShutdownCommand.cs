using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor shutdown</c>.</summary>
public static class ShutdownCommand
{
    public static Command Create() => DomainCommands.Shutdown();
}
