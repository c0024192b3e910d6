using System.CommandLine;
using SharpVisor.Cli;
using SharpVisor.Cli.Commands;

// Firecracker's command line has its own parser (and is the VMM's fast path to a ready API):
// System.CommandLine lives in a separate method so that this path does not even load it
// (ReadyToRun code resolves a method's types before it first runs).
if (args.Length > 0 && args[0] == "firecracker")
{
    SharpVisor.Host.Firecracker.StartupTrace.Mark("main");
    return FirecrackerCommand.Run(args[1..]);
}

// The jailer too: its own Firecracker-style parser, and it must run on the main thread.
if (args.Length > 0 && args[0] == "jailer")
{
    return JailerCommand.Run(args[1..]);
}

return RunCommandLine(args);

static int RunCommandLine(string[] args)
{
    var root = new RootCommand("SharpVisor: a hypervisor platform in C#. Boots Linux guests on KVM.");
    root.Subcommands.Add(RunCommand.Create());
    root.Subcommands.Add(CreateCommand.Create());
    root.Subcommands.Add(ListCommand.Create());
    root.Subcommands.Add(ConsoleCommand.Create());
    root.Subcommands.Add(PauseCommand.Create());
    root.Subcommands.Add(UnpauseCommand.Create());
    root.Subcommands.Add(ShutdownCommand.Create());
    root.Subcommands.Add(RebootCommand.Create());
    root.Subcommands.Add(DestroyCommand.Create());
    root.Subcommands.Add(MemSetCommand.Create());
    root.Subcommands.Add(VcpuPinCommand.Create());
    root.Subcommands.Add(SchedCommand.Create());
    root.Subcommands.Add(SnapshotCommands.Save());
    root.Subcommands.Add(SnapshotCommands.Restore());
    root.Subcommands.Add(SnapshotCommands.Snapshot());
    root.Subcommands.Add(SnapshotCommands.Rebase());
    root.Subcommands.Add(MigrateCommand.Create());
    root.Subcommands.Add(TopCommand.Create());
    root.Subcommands.Add(XenStoreCommands.List());
    root.Subcommands.Add(XenChannelsCommand.Create());
    root.Subcommands.Add(XenStoreCommands.Read());
    root.Subcommands.Add(XenStoreCommands.Write());
    root.Subcommands.Add(XenStoreCommands.Remove());
    root.Subcommands.Add(DaemonCommand.Create());
    root.Subcommands.Add(VmmCommand.Create());
    root.Subcommands.Add(FirecrackerCommand.Create());
    root.Subcommands.Add(JailerCommand.Create());
    root.Subcommands.Add(AttestCommand.Create());
    root.Subcommands.Add(ProtectCommand.Create());
    root.Subcommands.Add(EventsCommand.Create());
    return root.Parse(args).Invoke();
}
