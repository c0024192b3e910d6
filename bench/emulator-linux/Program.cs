using System.Diagnostics;
using System.Globalization;
using SharpVisor.Boot;
using SharpVisor.Devices.Legacy;
using SharpVisor.Emulator;
using SharpVisor.Emulator.Mmu;
using SharpVisor.Emulator.Platform;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Bench.EmulatorLinux;

/// <summary>
/// Boots a Linux bzImage on the bare emulated CPU (no accelerator yet): the boot protocol state
/// from <see cref="BootLoader"/>, COM1 on the port bus, exceptions delivered through the guest's
/// IDT. Prints the serial console and, at the end, how far the kernel got and why it stopped
/// (it stops at GUEST-READY, or after --seconds).
/// Usage: dotnet run -c Release --project bench/emulator-linux [-- --kernel F] [--initrd F]
///        [--cmdline S] [--memory MiB] [--seconds N] [--mmu shadow|nested] [--no-platform]
///        [--profile] [--trace-exceptions]
/// </summary>
internal static class Program
{
    private const string GuestDirectory = "/var/cache/sharpvisor/guest/current";

    public static int Main(string[] args)
    {
        string kernel = Path.Combine(GuestDirectory, "vmlinuz");
        string? initrd = Path.Combine(GuestDirectory, "initrd.img");
        string commandLine = "earlyprintk=serial,ttyS0 console=ttyS0 loglevel=8";
        ulong memorySize = 256UL << 20;
        double seconds = 120;
        MmuMode mode = MmuMode.Shadow;
        bool traceExceptions = false;
        bool withPlatform = true;
        Profile? profile = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--kernel": kernel = args[++i]; break;
                case "--initrd": initrd = args[++i] == "none" ? null : args[i]; break;
                case "--cmdline": commandLine = args[++i]; break;
                case "--memory": memorySize = ulong.Parse(args[++i], CultureInfo.InvariantCulture) << 20; break;
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--mmu": mode = Enum.Parse<MmuMode>(args[++i], ignoreCase: true); break;
                case "--trace-exceptions": traceExceptions = true; break;
                case "--no-platform": withPlatform = false; break;
                case "--profile": profile = new Profile(); break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}");
                    return 2;
            }
        }

        using GuestMemory memory = GuestMemory.CreateRam(memorySize);
        BootResult boot = BootLoader.Load(memory, new BootRequest(kernel) { CommandLine = commandLine, InitrdPath = initrd });
        Console.Error.WriteLine(boot.Describe());

        var ports = new PortIoBus();
        var mmioBus = new MmioBus();
        var control = new MachineControl();
        var clock = new Stopwatch();
        using var console = new MarkerStream(Console.OpenStandardOutput(), clock, "Run /init", "INIT-START", "GUEST-READY");
        SoftwarePlatform? platform = withPlatform ? new SoftwarePlatform(memory, 1) : null;
        platform?.Register(ports, mmioBus);
        LegacyPlatform legacy = LegacyPlatform.Register(ports, platform is null ? new NoInterrupts() : platform.IrqChip, control, console);
        PlatformGlue? glue = platform is null ? null : new PlatformGlue(platform, mmioBus);

        using SecondLevelTable? secondLevel = mode == MmuMode.Nested ? SecondLevelTable.Build(memory) : null;
        IMmu mmu = MmuFactory.Create(mode, memory, secondLevel);
        // XSAVE/XRSTOR are not implemented yet: a model without them makes Linux use FXSAVE.
        var model = new CpuModel(CpuModel.Default.Features & ~CpuFeature.Xsave);
        var cpu = new X86Cpu(new PhysicalMemory(memory, glue), model, mmu)
        {
            Platform = glue,
            DeliverExceptions = true,
            PortIo = ports,
            Diagnostics = line => Console.Error.WriteLine($"[cpu] {line}"),
        };
        cpu.SetState(boot.State);

        clock.Start();
        TimeSpan halted = TimeSpan.Zero;
        CpuRunResult result = default;
        while (clock.Elapsed.TotalSeconds < seconds && !control.IsStopRequested && !console.Seen.ContainsKey("GUEST-READY"))
        {
            glue?.DeliverEvents(cpu);
            if (cpu.IsHalted && glue is not null)
            {
                TimeSpan before = clock.Elapsed;
                glue.WaitWhileHalted();
                halted += clock.Elapsed - before;
                continue;
            }

            result = traceExceptions ? cpu.Run(1) : cpu.Run(profile is null ? 200_000 : 20_000);
            profile?.Sample(cpu.Rip);
            if (result.Reason is CpuStopReason.TripleFault or CpuStopReason.WaitingForStartup
                || (result.Reason == CpuStopReason.Halted && glue is null))
            {
                break;
            }
        }

        clock.Stop();
        console.Flush();
        Console.Error.WriteLine();
        Console.Error.WriteLine($"stopped: {result} after {cpu.InstructionsExecuted:N0} instructions in {clock.Elapsed.TotalSeconds:F1} s ({cpu.InstructionsExecuted / clock.Elapsed.TotalSeconds / 1e6:F1} MIPS); control: {control.StopReason?.ToString() ?? "running"}");
        Console.Error.WriteLine($"halted (idle) {halted.TotalSeconds:F1} s; markers: {string.Join(", ", console.Seen.Select(p => $"{p.Key} at {p.Value:F1} s"))}");
        Console.Error.WriteLine($"serial: {legacy.Serial.TransmittedBytes} bytes; blocks decoded {cpu.BlocksDecoded:N0}; MMU {mmu.Counters}");
        Console.Error.WriteLine(cpu.GetState().Format());
        profile?.Print(Console.Error, cpu);
        return 0;
    }

    /// <summary>No interrupt controller yet: device interrupt lines go nowhere.</summary>
    private sealed class NoInterrupts : IInterruptController
    {
        public void SetIrqLevel(uint gsi, bool asserted)
        {
        }

        public void SignalMsi(ulong address, uint data)
        {
        }
    }
}
