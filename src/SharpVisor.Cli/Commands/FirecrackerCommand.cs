using System.CommandLine;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Firecracker;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor firecracker</c>: the per-domain VMM under Firecracker's command line
/// (<see cref="FirecrackerCommandLine"/>, shared with the NativeAOT front end out/firecracker),
/// and, with the hidden <c>--handover-fd N</c>, the JIT VMM that the front end execs at InstanceStart.
/// </summary>
public static class FirecrackerCommand
{
    public const string DefaultApiSocket = FirecrackerCommandLine.DefaultApiSocket;

    public static IReadOnlyList<FirecrackerArgument> Arguments => FirecrackerCommandLine.Arguments;

    /// <summary>The entry in `sharpvisor --help`; Program dispatches `firecracker` to <see cref="Run"/> before System.CommandLine parses.</summary>
    public static Command Create()
    {
        var command = new Command("firecracker", "Run a microVM VMM with Firecracker's command line and REST API (a drop-in for the firecracker binary; see docs/firecracker.md).");
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(result => Run([.. result.UnmatchedTokens]));
        return command;
    }

    public static int Run(IReadOnlyList<string> args)
    {
        if (args.Count == 2 && args[0] == VmmHandoverState.DescriptorOption)
        {
            return FirecrackerCommandLine.RunHandedOver(args[1], new MonitorDomainMachineFactory());
        }

        return FirecrackerCommandLine.Run(args, new MonitorDomainMachineFactory());
    }
}
