using System.CommandLine;

namespace SharpVisor.Cli.Commands;

/// <summary><c>sharpvisor vcpu-pin</c>.</summary>
public static class VcpuPinCommand
{
    public static Command Create() => DomainCommands.VcpuPin();
}
