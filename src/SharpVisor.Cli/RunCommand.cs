using System.CommandLine;
using System.Diagnostics;
using SharpVisor.Boot;
using SharpVisor.Devices.Terminal;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Host.Vmm;
using SharpVisor.Interop;
using SharpVisor.Kvm;
using SharpVisor.Machine;

namespace SharpVisor.Cli;

/// <summary><c>sharpvisor run</c>: boot one guest in this process with its serial console here.</summary>
public static class RunCommand
{
    /// <summary>How long the guest may stay silent on the serial console before we report progress.</summary>
    private static readonly TimeSpan s_progressInterval = TimeSpan.FromSeconds(10);

    public static Command Create()
    {
        var kernel = new Option<string?>("--kernel") { Description = "Kernel: Linux bzImage, vmlinux ELF or Multiboot v1 ELF (default: the default guest)" };
        var initrd = new Option<string?>("--initrd") { Description = "Initial ramdisk (default: the default guest's, when booting its kernel)" };
        var cmdline = new Option<string?>("--cmdline") { Description = $"Kernel command line (default: \"{DefaultGuest.CommandLine}\")" };
        var memory = new Option<string>("--memory") { Description = "Guest RAM, e.g. 512, 512M, 2G (a bare number is MiB)", DefaultValueFactory = _ => "512M" };
        var cpus = new Option<int>("--cpus") { Description = "Number of vCPUs", DefaultValueFactory = _ => 1 };
        var accel = new Option<string>("--accel")
        {
            Description = "Accelerator: kvm, emulator, or auto (KVM when hardware-backed, else the emulator)",
            DefaultValueFactory = _ => "auto",
        };
        accel.AcceptOnlyFromAmong("kvm", "emulator", "auto");
        var mmu = new Option<string?>("--mmu") { Description = "The emulator's paging technique: shadow (default) or nested; not for KVM" };
        mmu.AcceptOnlyFromAmong("shadow", "nested");
        var serial = new Option<string>("--serial") { Description = "Serial console (16550 at 0x3F8): stdio, file:PATH or none", DefaultValueFactory = _ => "stdio" };
        var modules = new Option<string[]>("--module") { Description = "Multiboot module file (repeatable)", AllowMultipleArgumentsPerToken = false };
        var timeout = new Option<double?>("--timeout") { Description = "Stop the guest after this many seconds (exit status 124)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Say where the kernel, initrd and boot structures were placed" };

        var command = new Command("run", "Boot a guest with its serial console on this terminal (Ctrl-A x quits).")
        {
            kernel, initrd, cmdline, memory, cpus, accel, mmu, serial, modules, timeout, verbose,
        };
        command.SetAction(result => Execute(
            result.GetValue(kernel),
            result.GetValue(initrd),
            result.GetValue(cmdline),
            result.GetValue(memory)!,
            result.GetValue(cpus),
            result.GetValue(accel)!,
            result.GetValue(mmu),
            result.GetValue(serial)!,
            result.GetValue(modules) ?? [],
            result.GetValue(timeout),
            result.GetValue(verbose)));
        return command;
    }

    private static int Execute(
        string? kernel, string? initrd, string? cmdline, string memory, int cpus, string accel, string? mmu,
        string serial, string[] modules, double? timeoutSeconds, bool verbose)
    {
        var startedAt = Stopwatch.StartNew();
        SerialConsole? console = null;
        VirtualMachineMonitor? vmm = null;
        try
        {
            if (kernel is null)
            {
                DefaultGuest.EnsurePresent();
                kernel = DefaultGuest.KernelPath;
                initrd ??= DefaultGuest.InitrdPath;
            }

            if (timeoutSeconds is <= 0 or > 1e7)
            {
                throw new CliException($"--timeout {timeoutSeconds} must be a positive number of seconds");
            }

            var configuration = new MachineConfiguration
            {
                KernelPath = kernel,
                InitrdPath = initrd,
                CommandLine = cmdline ?? DefaultGuest.CommandLine,
                Modules = modules.Select(m => new BootModule(m)).ToArray(),
                MemorySize = MemorySize.Parse(memory),
                VcpuCount = cpus,
                Accelerator = accel switch
                {
                    "kvm" => AcceleratorKind.Kvm,
                    "emulator" => AcceleratorKind.Emulator,
                    _ => AcceleratorKind.Auto,
                },
                Mmu = mmu switch
                {
                    "shadow" => MmuMode.Shadow,
                    "nested" => MmuMode.Nested,
                    _ => null,
                },
                KvmDevicePath = Environment.GetEnvironmentVariable("SHARPVISOR_KVM_DEVICE") is { Length: > 0 } device ? device : "/dev/kvm",
            };

            console = SerialConsole.Open(serial, onEscape: () => vmm?.Stop("console escape (Ctrl-A x)"), Console.Error);
            var notices = new Notices(console);
            vmm = VirtualMachineMonitor.Create(configuration with { SerialOutput = console.Output, Diagnostics = notices.Say });
            console.Attach(vmm.Serial);

            notices.Say($"accelerator: {vmm.Accelerator.Reason}");
            notices.Say($"booting {vmm.Boot.KernelDescription}: {configuration.MemorySize >> 20} MiB, {cpus} vCPU{(cpus == 1 ? "" : "s")}");
            if (verbose)
            {
                foreach (string line in vmm.Boot.Describe().Split('\n'))
                {
                    notices.Say(line);
                }
            }

            using var progress = new ProgressReporter(vmm, notices, startedAt, s_progressInterval);
            RunOutcome outcome = vmm.Run(timeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : null);
            progress.Dispose();
            console.Dispose();
            console = null;
            Report(outcome, startedAt);
            return outcome.ExitStatus;
        }
        catch (Exception e) when (IsUserError(e))
        {
            console?.Dispose();
            console = null;
            Console.Error.WriteLine($"sharpvisor: error: {e.Message}");
            return ExitCodes.Error;
        }
        finally
        {
            console?.Dispose();
            vmm?.Dispose();
        }
    }

    private static bool IsUserError(Exception e) =>
        e is CliException or ArgumentException or BootImageException or KvmUnavailableException or LinuxException
            or IOException or UnauthorizedAccessException;

    private static void Report(RunOutcome outcome, Stopwatch startedAt)
    {
        string elapsed = $"{startedAt.Elapsed.TotalSeconds:0.00} s";
        switch (outcome.Reason)
        {
            case MachineStopReason.Crashed:
                Console.Error.WriteLine($"[sharpvisor] guest crashed after {elapsed}: {outcome.Detail}");
                if (outcome.CrashReport is not null)
                {
                    Console.Error.WriteLine(outcome.CrashReport);
                }

                break;
            default:
                Console.Error.WriteLine($"[sharpvisor] {outcome.Detail} after {elapsed} (exit status {outcome.ExitStatus})");
                break;
        }
    }
}
