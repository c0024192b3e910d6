using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor mem-set</c>.</summary>
public static class MemSetCommand
{
    public static Command Create() => DomainCommands.MemSet();
}
