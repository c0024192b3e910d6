using System.Diagnostics;
using SharpVisor.Host.Firecracker;
using SharpVisor.Host.Vmm;
using SharpVisor.Interop;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// Starts each VMM as its own process (`sharpvisor vmm ...`) in its own session, so it
/// outlives the daemon and a Ctrl-C aimed at the daemon. The VMM writes its log to the domain's
/// log file itself, capped and rotated (<see cref="Vmm.VmmLogFile"/>); its stderr is appended to
/// the same file only for what the runtime prints when the process dies.
/// </summary>
public sealed class ProcessVmmLauncher : IVmmLauncher
{
    private readonly string _fileName;
    private readonly IReadOnlyList<string> _prefixArguments;

    /// <param name="fileName">The program to run: the sharpvisor executable, or dotnet.</param>
    /// <param name="prefixArguments">Arguments before "vmm": the sharpvisor.dll path when run through dotnet.</param>
    public ProcessVmmLauncher(string fileName, IReadOnlyList<string> prefixArguments)
    {
        _fileName = fileName;
        _prefixArguments = prefixArguments;
    }

    /// <summary>Runs VMMs with the same executable as this process (the `sharpvisor` command).</summary>
    public static ProcessVmmLauncher ForCurrentProcess()
    {
        SelfCommand self = SelfCommand.Current;
        return new ProcessVmmLauncher(self.FileName, self.PrefixArguments);
    }

    public VmmHandle Launch(DomainPaths paths, VmmIdentity identity)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = false,
            RedirectStandardOutput = false,
            RedirectStandardError = false,
        };
        VmmRuntimeEnvironment.ApplyTo(start.Environment);

        // sh redirects and execs setsid, which execs the VMM: the pid we get is the VMM's.
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("log=\"$1\"; shift; exec setsid \"$@\" </dev/null >>\"$log\" 2>&1");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(paths.LogFile);
        start.ArgumentList.Add(_fileName);
        foreach (string argument in _prefixArguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (string argument in VmmArguments(paths, identity))
        {
            start.ArgumentList.Add(argument);
        }

        Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {_fileName}");
        return new ChildVmmHandle(process);
    }

    public VmmHandle? Adopt(DomainPaths paths, int pid, long? startTicks) =>
        ProcessInfo.IsAlive(pid, startTicks) ? new AdoptedVmmHandle(pid, startTicks ?? ProcessInfo.TryReadStartTicks(pid)) : null;

    public static IEnumerable<string> VmmArguments(DomainPaths paths, VmmIdentity identity) =>
    [
        "vmm",
        "--api-sock", paths.ApiSocket,
        "--console-sock", paths.ConsoleSocket,
        "--state-file", paths.VmmStateFile,
        "--id", identity.DomainId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--name", identity.InstanceId,
        "--accel", identity.Accelerator,
        "--log-file", paths.LogFile,

        // A Xen domain meets the daemon's other domains in the domains directory (docs/xen.md, "Inter-domain").
        .. identity.Xen != XenMode.None && Path.GetDirectoryName(paths.Directory) is { } domains ? new[] { "--xen-link", domains } : [],
        .. identity.Xen switch
        {
            XenMode.Pvh => new[] { "--xen", "pvh" },
            XenMode.Hvm => ["--xen", "hvm"],
            XenMode.Pv => ["--xen", "pv"],
            XenMode.Driver => ["--xen", "driver"],
            _ => [],
        },
    ];

    private sealed class ChildVmmHandle : VmmHandle
    {
        private readonly Process _process;

        public ChildVmmHandle(Process process)
        {
            _process = process;
            Pid = process.Id;
            StartTicks = ProcessInfo.TryReadStartTicks(Pid);
            Exited = process.WaitForExitAsync();
        }

        public override int Pid { get; }

        public override long? StartTicks { get; }

        public override Task Exited { get; }

        public override void Kill()
        {
            try
            {
                _process.Kill();
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }
        }
    }

    /// <summary>A VMM started by an earlier daemon: not our child, so its exit is noticed by polling /proc.</summary>
    private sealed class AdoptedVmmHandle : VmmHandle
    {
        public AdoptedVmmHandle(int pid, long? startTicks)
        {
            Pid = pid;
            StartTicks = startTicks;
            Exited = WaitAsync();
        }

        public override int Pid { get; }

        public override long? StartTicks { get; }

        public override Task Exited { get; }

        public override void Kill()
        {
            if (ProcessInfo.IsAlive(Pid, StartTicks))
            {
                try
                {
                    using Process process = Process.GetProcessById(Pid);
                    process.Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    // Already exited.
                }
            }
        }

        private async Task WaitAsync()
        {
            while (ProcessInfo.IsAlive(Pid, StartTicks))
            {
                await Task.Delay(100);
            }
        }
    }
}
