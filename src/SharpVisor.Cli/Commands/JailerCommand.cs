using System.CommandLine;
using SharpVisor.Cli.Jailer;
using SharpVisor.Host.Firecracker;
using SharpVisor.Interop;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor jailer</c> (and out/jailer): Firecracker's jailer contract — the same command
/// line, refusals, jail layout and order of operations — around SharpVisor's firecracker (see
/// <see cref="Jailer.Jailer"/>; docs/firecracker.md, "Jailer"). Parsed by Firecracker's arg parser,
/// as Firecracker's jailer is; a refusal is the jailer's message on standard error, then Rust's
/// "Error: ..." line, and exit status 1.
/// </summary>
public static class JailerCommand
{
    public static IReadOnlyList<FirecrackerArgument> Arguments { get; } =
    [
        new("id", true, "Jail ID.") { Required = true },
        new("exec-file", true, "File path to exec into.") { Required = true },
        new("uid", true, "The user identifier the jailer switches to after exec.") { Required = true },
        new("gid", true, "The group identifier the jailer switches to after exec.") { Required = true },
        new("chroot-base-dir", true, "The base folder where chroot jails are located.") { DefaultValue = JailerOptions.DefaultChrootBase },
        new("netns", true, "Path to the network namespace this microVM should join."),
        new("daemonize", false, "Daemonize the jailer before exec, by invoking setsid(), and redirecting the standard I/O file descriptors to /dev/null."),
        new("new-pid-ns", false, "Exec into a new PID namespace."),
        new("cgroup", true, "Cgroup and value to be set by the jailer. It must follow this format: <cgroup_file>=<value> (e.g cpu.shares=10). This argument can be used multiple times to add multiple cgroups.") { AllowMultiple = true },
        new("resource-limit", true, "Resource limit values to be set by the jailer. It must follow this format: <resource>=<value> (e.g no-file=1024). This argument can be used multiple times to add multiple resource limits. Current available resource values are:\n\t\tfsize: The maximum size in bytes for files created by the process.\n\t\tno-file: Specifies a value one greater than the maximum file descriptor number that can be opened by this process.") { AllowMultiple = true },
        new("cgroup-version", true, "Select the cgroup version used by the jailer.") { DefaultValue = "1" },
        new("parent-cgroup", true, "Parent cgroup in which the cgroup of this microvm will be placed."),
        new("version", false, "Print the binary version number."),
    ];

    /// <summary>The entry in `sharpvisor --help`; Program dispatches `jailer` to <see cref="Run"/> before System.CommandLine parses.</summary>
    public static Command Create()
    {
        var command = new Command("jailer", "Start a firecracker VMM in a jail with Firecracker's jailer command line (chroot, uid/gid, cgroups, netns; see docs/firecracker.md, \"Jailer\").");
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(result => Run([.. result.UnmatchedTokens]));
        return command;
    }

    public static int Run(IReadOnlyList<string> args)
    {
        long startTimeUs = Jailer.Jailer.MonotonicMicroseconds();
        long startCpuUs = Jailer.Jailer.ProcessCpuMicroseconds();

        // As Firecracker's sanitize_process: no inherited descriptor but stdio reaches the jailed
        // process. Marked close-on-exec rather than closed: the .NET runtime's own are among them.
        LibC.CloseRange(3, uint.MaxValue, LibC.CLOSE_RANGE_CLOEXEC);

        var parser = new FirecrackerArgumentParser(Arguments);
        try
        {
            parser.Parse(args);
            if (parser.HelpRequested)
            {
                Console.Out.WriteLine($"Jailer v{VmmVersion.FirecrackerApi} (SharpVisor {VmmVersion.Current})\n");
                Console.Out.WriteLine(parser.FormattedHelp() + "\n");
                Console.Out.WriteLine("Any arguments after the -- separator will be supplied to the jailed binary.\n");
                return 0;
            }

            if (parser.VersionRequested)
            {
                Console.Out.WriteLine($"Jailer v{VmmVersion.FirecrackerApi} (SharpVisor {VmmVersion.Current})\n");
                return 0;
            }

            JailerOptions options = JailerOptions.FromArguments(parser);
            return new Jailer.Jailer(options, startTimeUs, startCpuUs).Run();
        }
        catch (FirecrackerArgumentException e)
        {
            // JailerError::ArgumentParsing around one of arg_parser's errors.
            Console.Error.WriteLine("Failed to parse arguments: " + e.Message);
            Console.Error.WriteLine($"Error: ArgumentParsing({e.Variant})");
            return 1;
        }
        catch (JailerException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine($"Error: {e.Variant}");
            return 1;
        }
    }
}
