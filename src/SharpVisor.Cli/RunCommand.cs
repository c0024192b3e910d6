using System.CommandLine;
using System.Diagnostics;
using SharpVisor.Boot;
using SharpVisor.Devices.Virtio;
using SharpVisor.Devices.Terminal;
using SharpVisor.Emulator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Translator;
using SharpVisor.Host.Vmm;
using SharpVisor.Interop;
using SharpVisor.Kvm;
using SharpVisor.Machine;
using SharpVisor.Machine.Protection;
using SharpVisor.Security;
using SharpVisor.Xen;

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
        var tier = new Option<string?>("--tier")
        {
            Description = "The emulator's execution tiers: interpreter, auto (hot blocks compiled by the translator, tier 1), always (every block compiled; for testing) or native (hot blocks encoded to x86-64 code; opt-in). Default: SHARPVISOR_TIER, else auto",
        };
        tier.AcceptOnlyFromAmong("interpreter", "auto", "always", "native");
        var cpuVendor = new Option<string?>("--cpu-vendor") { Description = "The CPU vendor the guest sees: intel or amd (default: the host's)" };
        var decompressor = new Option<string?>("--kernel-decompressor")
        {
            Description = "Who decompresses a bzImage: vmm (default: the VMM decodes an LZ4 or gzip payload and enters startup_64, KASLR off; other payloads fall back to guest) or guest (the bzImage's own decompressor, with KASLR)",
        };
        decompressor.AcceptOnlyFromAmong("vmm", "guest");
        var serial = new Option<string>("--serial") { Description = "Serial console (16550 at 0x3F8): stdio, file:PATH or none", DefaultValueFactory = _ => "stdio" };
        var modules = new Option<string[]>("--module") { Description = "Multiboot module file (repeatable)", AllowMultipleArgumentsPerToken = false };
        var timeout = new Option<double?>("--timeout") { Description = "Stop the guest after this many seconds (exit status 124)" };
        var counters = new Option<string?>("--counters") { Description = "Append the VMM's counters to this file on SIGUSR2 and at exit (for benchmarks: bench/xen-io)" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Say where the kernel, initrd and boot structures were placed, and keep reporting a silent guest on an interactive console" };
        var extraInitrds = new Option<string[]>("--extra-initrd") { Description = "A cpio archive (optionally compressed) appended after the initrd, e.g. one holding /hook.sh (repeatable)", AllowMultipleArgumentsPerToken = false };
        var disks = new Option<string[]>("--disk") { Description = "virtio-blk disk over a raw image: PATH[,ro][,id=ID] (repeatable; the first is /dev/vda; under --xen a Xen vbd, /dev/xvda)", AllowMultipleArgumentsPerToken = false };
        var nets = new Option<string[]>("--net") { Description = "virtio-net NIC over a TAP: tap[=NAME][,mac=MAC] (repeatable; a TAP that does not exist is created, which needs CAP_NET_ADMIN; under --xen a Xen vif, eth0 via netfront)", AllowMultipleArgumentsPerToken = false };
        var balloon = new Option<string?>("--balloon") { Description = "virtio-balloon; the optional SIZE (e.g. 64M) is the memory the guest gives back at boot", Arity = ArgumentArity.ZeroOrOne };
        var virtioConsole = new Option<string?>("--virtio-console") { Description = "virtio-console (the guest's hvc0), written to this file" };
        var noRng = new Option<bool>("--no-rng") { Description = "No virtio-rng (by default the guest gets one, fed by the host's CSPRNG)" };
        var xen = new Option<string?>("--xen") { Description = "Run the guest as a Xen domain: pvh (PVH entry, Xen hypercalls, event channels, the PV console hvc0) or hvm (the PC boot plus the Xen platform PCI device, so the PV drivers take over), or pv (a PV domain with direct paging; early boot only, docs/xen-pv.md); the emulator only" };
        xen.AcceptOnlyFromAmong("pvh", "hvm", "pv");
        var protect = new Option<string?>("--protect")
        {
            Description = "Kernel runtime protection: kernel[,cr-pin][,msr-pin][,measure=SECONDS][,mode=enforce|log][,measure-log=PATH] (the emulator only; docs/security.md)",
        };

        var attestQuote = new Option<string?>("--attest-quote") { Description = "With --protect: at exit, write a signed attestation quote here (needs --attest-nonce)" };
        var attestNonce = new Option<string?>("--attest-nonce") { Description = "The verifier's nonce (hex) for --attest-quote" };
        var attestKey = new Option<string?>("--attest-key") { Description = $"Directory of the host's attestation key (default: $SHARPVISOR_RUNTIME_DIR or {SharpVisor.Host.Daemon.RuntimeDirectory.DefaultPath}, /attestation)" };

        var command = new Command("run", "Boot a guest with its serial console on this terminal (Ctrl-A x quits).")
        {
            kernel, initrd, cmdline, decompressor, memory, cpus, accel, mmu, tier, cpuVendor, serial, modules, timeout, verbose,
            extraInitrds, disks, nets, balloon, virtioConsole, noRng, xen, protect,
            attestQuote, attestNonce, attestKey, counters,
        };
        command.SetAction(result => ApplyTier(result.GetValue(tier)) ?? Execute(
            result.GetValue(kernel),
            result.GetValue(initrd),
            result.GetValue(cmdline),
            result.GetValue(decompressor),
            result.GetValue(memory)!,
            result.GetValue(cpus),
            result.GetValue(accel)!,
            result.GetValue(mmu),
            result.GetValue(cpuVendor),
            result.GetValue(serial)!,
            result.GetValue(modules) ?? [],
            result.GetValue(timeout),
            result.GetValue(verbose),
            new DeviceArguments(
                result.GetValue(extraInitrds) ?? [],
                result.GetValue(disks) ?? [],
                result.GetValue(nets) ?? [],
                result.GetResult(balloon) is null ? null : result.GetValue(balloon) ?? "0",
                result.GetValue(virtioConsole),
                !result.GetValue(noRng),
                result.GetValue(xen),
                result.GetValue(protect)),
            new AttestArguments(result.GetValue(attestQuote), result.GetValue(attestNonce), result.GetValue(attestKey)),
            result.GetValue(counters)));
        return command;
    }

    /// <summary>Sets the emulator's tiers for the CPUs about to be created (process-wide); null to go on.</summary>
    private static int? ApplyTier(string? tier)
    {
        if (tier is not null && TranslatorSettings.ParseTier(tier) is ExecutionTier parsed)
        {
            TranslatorSettings.DefaultTier = parsed;
        }

        return null;
    }

    /// <summary>The device options as given on the command line.</summary>
    private sealed record DeviceArguments(string[] ExtraInitrds, string[] Disks, string[] Nets, string? Balloon, string? VirtioConsole, bool Rng, string? Xen, string? Protect);

    /// <summary>Where to write a quote at exit, for which nonce, signed with the key in which directory.</summary>
    private sealed record AttestArguments(string? QuotePath, string? Nonce, string? KeyDirectory);

    private static int Execute(
        string? kernel, string? initrd, string? cmdline, string? decompressor, string memory, int cpus, string accel, string? mmu, string? cpuVendor,
        string serial, string[] modules, double? timeoutSeconds, bool verbose, DeviceArguments devices, AttestArguments attest, string? countersPath)
    {
        var startedAt = Stopwatch.StartNew();
        SerialConsole? console = null;
        VirtualMachineMonitor? vmm = null;
        FileStream? hvc = null;
        try
        {
            if (kernel is null)
            {
                DefaultGuest.EnsurePresent();
                kernel = DefaultGuest.KernelPath;
                initrd ??= DefaultGuest.InitrdPath;
            }

            CpuVendor? vendor = null;
            if (cpuVendor is not null)
            {
                vendor = HostCpu.TryParse(cpuVendor, out CpuVendor parsed)
                    ? parsed
                    : throw new CliException($"--cpu-vendor {cpuVendor}: the vendor is intel or amd");
            }

            if (timeoutSeconds is <= 0 or > 1e7)
            {
                throw new CliException($"--timeout {timeoutSeconds} must be a positive number of seconds");
            }

            var configuration = new MachineConfiguration
            {
                KernelPath = kernel,
                InitrdPath = initrd,
                CommandLine = cmdline ?? (devices.Xen is null ? DefaultGuest.CommandLine : DefaultGuest.XenCommandLine),
                Xen = XenModes.Parse(devices.Xen),
                Modules = modules.Select(m => new BootModule(m)).ToArray(),
                KernelDecompressor = decompressor == "guest" ? KernelDecompressor.Guest : KernelDecompressor.Vmm,
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
                    "shadow" => MmuKind.Shadow,
                    "nested" => MmuKind.Nested,
                    _ => null,
                },
                CpuVendor = vendor?.ToCpuVendorKind(),
                KvmDevicePath = Environment.GetEnvironmentVariable("SHARPVISOR_KVM_DEVICE") is { Length: > 0 } device ? device : "/dev/kvm",
                ExtraInitrdPaths = devices.ExtraInitrds,
                Disks = devices.Disks.Select(DeviceOptions.ParseDisk).ToArray(),
                NetworkInterfaces = devices.Nets.Select(DeviceOptions.ParseNetwork).ToArray(),
                Balloon = devices.Balloon is { } target ? new BalloonConfiguration { InitialTargetMib = ParseBalloonTarget(target) } : null,
                EntropyDevice = devices.Rng,
                Protection = devices.Protect is { } protection ? ProtectionPolicy.Parse(protection) : null,
            };
            configuration.Validate();
            if (attest.QuotePath is not null && (configuration.Protection is null || attest.Nonce is null))
            {
                throw new CliException("--attest-quote needs --protect and --attest-nonce");
            }

            if (attest.Nonce is { } nonce && !KernelProtector.IsValidNonce(nonce))
            {
                throw new CliException($"--attest-nonce {nonce}: the nonce is 1 to 64 bytes in hex");
            }

            if (devices.VirtioConsole is { } hvcPath)
            {
                hvc = OpenConsoleFile(hvcPath);
                configuration = configuration with { VirtioConsoleOutput = hvc };
            }

            console = SerialConsole.Open(serial, onEscape: () => vmm?.Stop("console escape (Ctrl-A x)"), Console.Error);
            var notices = new Notices(console);
            vmm = VirtualMachineMonitor.Create(configuration with { SerialOutput = console.Output, Log = notices.Say });
            if (vmm.Xen is { } xenGuest)
            {
                // hvc0 shares the terminal: keystrokes go to the PV console ring too.
                console.SecondaryInput = data => xenGuest.Console.WriteInput(data.Span);
            }

            console.Attach(vmm.Serial);

            notices.Say($"accelerator: {vmm.Accelerator.Reason}");
            notices.Say($"booting {vmm.Boot.KernelDescription}: {configuration.MemorySize >> 20} MiB, {cpus} vCPU{(cpus == 1 ? "" : "s")}");
            foreach (string line in DescribeDevices(vmm))
            {
                notices.Say(line);
            }

            if (verbose)
            {
                foreach (string line in vmm.Boot.Describe().Split('\n'))
                {
                    notices.Say(line);
                }
            }

            // On an interactive console the terminal is the guest's once it speaks: no progress lines over it.
            using var progress = new ProgressReporter(vmm, notices, startedAt, s_progressInterval, quietAfterGuestOutput: console.IsInteractive && !verbose);
            using CounterDump? counterDump = countersPath is null ? null : new CounterDump(vmm, countersPath);
            RunOutcome outcome = vmm.Run(timeoutSeconds is { } s ? TimeSpan.FromSeconds(s) : null);
            counterDump?.Dispose();
            progress.Dispose();
            console.Dispose();
            console = null;
            Report(outcome, startedAt);
            if (vmm.Protector is { } protector)
            {
                ReportProtection(protector);
                if (attest.QuotePath is { } quotePath)
                {
                    string keyDirectory = attest.KeyDirectory ?? Path.Combine(SharpVisor.Host.Daemon.RuntimeDirectory.FromEnvironment().Root, "attestation");
                    using AttestationKey key = AttestationKey.LoadOrCreate(keyDirectory);
                    File.WriteAllText(quotePath, protector.Quote(attest.Nonce!, key).ToJson());
                    Console.Error.WriteLine($"[sharpvisor] attestation quote for nonce {attest.Nonce} written to {quotePath} (public key {Path.Combine(keyDirectory, AttestationKey.PublicKeyFile)})");
                }
            }

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
            hvc?.Dispose();
        }
    }

    private static long ParseBalloonTarget(string text) => text == "0" ? 0 : (long)(MemorySize.Parse(text) >> 20);

    private static FileStream OpenConsoleFile(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--virtio-console '{path}': {e.Message}");
        }
    }

    /// <summary>One line per virtio device: what the guest will see where.</summary>
    private static IEnumerable<string> DescribeDevices(VirtualMachineMonitor vmm)
    {
        if (vmm.Xen is { } xen)
        {
            for (int i = 0; i < xen.BlockBackends.Count; i++)
            {
                XenBlockBackend vbd = xen.BlockBackends[i];
                DiskConfiguration config = vmm.Configuration.Disks[i];
                yield return $"disk{i}: xen vbd {vbd.DeviceId} /dev/{vbd.Name} {config.Path} ({vbd.CapacitySectors * 512 >> 20} MiB{(config.ReadOnly ? ", read-only" : "")})";
            }

            for (int i = 0; i < xen.NetBackends.Count; i++)
            {
                yield return $"net{i}: xen vif {i} on TAP {xen.Taps[i].Name}, MAC {xen.NetBackends[i].Mac}";
            }
        }

        int disk = 0;
        foreach (AttachedVirtioDevice attached in vmm.Devices.Devices)
        {
            string where = $"pci 00:{attached.Slot:x2}.0";
            switch (attached.Device)
            {
                case VirtioBlockDevice blk:
                    DiskConfiguration config = vmm.Configuration.Disks[disk];
                    yield return $"{attached.Name}: virtio-blk {where} /dev/vd{(char)('a' + disk)} {config.Path} ({blk.CapacitySectors * 512 >> 20} MiB{(config.ReadOnly ? ", read-only" : "")})";
                    disk++;
                    break;
                case VirtioNetDevice net:
                    yield return $"{attached.Name}: virtio-net {where} on TAP {net.Tap.Name}, MAC {net.MacAddress}";
                    break;
                default:
                    yield return $"{attached.Name}: {attached.Device.Name} {where}";
                    break;
            }
        }
    }

    private static bool IsUserError(Exception e) =>
        e is CliException or ArgumentException or BootImageException or KvmUnavailableException or LinuxException
            or IOException or UnauthorizedAccessException;

    /// <summary>The protection's summary after the run: lock, violations by kind, a last measurement against the golden one.</summary>
    private static void ReportProtection(KernelProtector protector)
    {
        if (protector.LockedAt is null)
        {
            Console.Error.WriteLine("[sharpvisor] protection: never locked (the guest did not reach user mode with its kernel read-only)");
            return;
        }

        Measurement? last = protector.MeasureNow("exit");
        string kinds = string.Join(" ", Enum.GetValues<ProtectionViolationKind>().Select(k => $"{KernelProtector.KindName(k)}={protector.Violations(k)}"));
        Console.Error.WriteLine($"[sharpvisor] protection: {protector.ViolationCount} violations ({kinds}); measurement {(last?.Digest == protector.Golden?.Digest ? "matches" : "DIFFERS FROM")} the golden {protector.Golden?.Digest}");
        if (last is not null)
        {
            double mib = last.BytesHashed / (1024.0 * 1024.0);
            Console.Error.WriteLine($"[sharpvisor] protection: a measurement hashes {mib:0.0} MiB in {last.Elapsed.TotalMilliseconds:0.0} ms ({last.Elapsed.TotalMilliseconds / Math.Max(mib, 1e-9):0.00} ms/MiB)");
        }
    }

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
