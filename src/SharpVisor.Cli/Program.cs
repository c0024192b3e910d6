using System.CommandLine;
using SharpVisor.Cli;

var root = new RootCommand("SharpVisor: a hypervisor platform in C#. Boots Linux guests on KVM.");
root.Subcommands.Add(RunCommand.Create());
return root.Parse(args).Invoke();
