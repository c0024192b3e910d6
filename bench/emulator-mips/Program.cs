using System.Diagnostics;
using System.Globalization;
using SharpVisor.Emulator;
using SharpVisor.Emulator.Translator.Native;
using SharpVisor.Interop;
using SharpVisor.Machine;
using SharpVisor.Memory;

namespace SharpVisor.Bench.EmulatorMips;

/// <summary>
/// Guest MIPS of the SharpVisor emulator on a CPU-bound loop mix, side by side with QEMU TCG
/// running the same machine code as a bare-metal guest. Reported by wall clock and by CPU time
/// (which a shared, loaded machine distorts less).
/// Usage: dotnet run -c Release --project bench/emulator-mips [-- --iterations N] [--no-qemu] [--no-sse]
/// </summary>
internal static class Program
{
    private static string s_lastTierLine = "";

    /// <summary>
    /// The emulator is measured under the .NET runtime settings a VMM process starts with
    /// (<see cref="VmmRuntimeEnvironment"/>); the runtime reads them from the environment at
    /// start-up only, so when one is missing the benchmark runs itself again with it and returns
    /// that run's exit code. Set a variable yourself (e.g. <c>DOTNET_TC_CallCountingDelayMs=100</c>,
    /// the runtime's default) to measure without it.
    /// </summary>
    private static int? RunUnderVmmRuntimeSettings(string[] args)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        int before = start.Environment.Count;
        VmmRuntimeEnvironment.ApplyTo(start.Environment);
        if (start.Environment.Count == before)
        {
            return null;
        }

        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Program).Assembly.Location);
        }

        foreach (string argument in args)
        {
            start.ArgumentList.Add(argument);
        }

        using Process child = Process.Start(start) ?? throw new InvalidOperationException($"could not start {self}");
        child.WaitForExit();
        return child.ExitCode;
    }

    public static int Main(string[] args)
    {
        if (RunUnderVmmRuntimeSettings(args) is int childExit)
        {
            return childExit;
        }

        int iterations = 3000;
        bool runQemu = true;
        bool sse = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--iterations":
                    iterations = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--no-qemu":
                    runQemu = false;
                    break;
                case "--no-sse":
                    sse = false;
                    break;
                case "--micro":
                    Micro.Run();
                    return 0;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}");
                    return 2;
            }
        }

        // Warm up the JIT, then measure; two sizes give the per-iteration instruction count.
        int warmup = Math.Max(1, iterations / 10);
        (long warmInstructions, _, _) = RunEmulator(warmup, sse);
        (long instructions, TimeSpan elapsed, double cpuSeconds) = RunEmulator(iterations, sse);
        double perIteration = (double)(instructions - warmInstructions) / (iterations - warmup);
        double mips = instructions / elapsed.TotalSeconds / 1e6;
        double cpuMips = instructions / cpuSeconds / 1e6;
        Console.WriteLine($"workload: {iterations} iterations x {perIteration:F0} guest instructions (integer, memory, branches, calls, string{(sse ? ", SSE" : "")})");
        Console.WriteLine($"SharpVisor emulator: {instructions:N0} instructions in {elapsed.TotalSeconds:F3} s wall, {cpuSeconds:F3} s CPU = {mips:F1} MIPS wall, {cpuMips:F1} MIPS CPU");
        Console.WriteLine(s_lastTierLine);

        if (!runQemu)
        {
            return 0;
        }

        string? qemu = FindQemu();
        if (qemu is null)
        {
            Console.WriteLine("QEMU: qemu-system-x86_64 not found (apt-get install qemu-system-x86); no ratio");
            return 0;
        }

        // The difference of two runs cancels QEMU's start-up and boot time.
        (double small, double smallCpu) = TimeQemu(qemu, iterations, sse);
        (double large, double largeCpu) = TimeQemu(qemu, iterations * 3, sse);
        double guestInstructions = perIteration * iterations * 2;
        double qemuMips = guestInstructions / (large - small) / 1e6;
        double qemuCpuMips = guestInstructions / (largeCpu - smallCpu) / 1e6;
        Console.WriteLine($"QEMU TCG ({Path.GetFileName(qemu)}): {qemuMips:F1} MIPS wall, {qemuCpuMips:F1} MIPS CPU (from {iterations}- and {iterations * 3}-iteration runs: {small:F3} s / {large:F3} s wall, {smallCpu:F3} s / {largeCpu:F3} s CPU)");
        Console.WriteLine($"ratio emulator/QEMU TCG: {mips / qemuMips:F3} wall, {cpuMips / qemuCpuMips:F3} CPU");
        return 0;
    }

    private static (long Instructions, TimeSpan Elapsed, double CpuSeconds) RunEmulator(int iterations, bool sse)
    {
        (byte[] image, ulong entry) = Workload.Build(iterations, sse);
        using GuestMemory memory = GuestMemory.CreateRam(64UL << 20);
        memory.Write(Workload.LoadAddress, image);
        var cpu = new X86Cpu(new PhysicalMemory(memory));
        cpu.SetState(new VcpuState
        {
            Cr0 = VcpuState.Cr0ProtectionEnable | VcpuState.Cr0Paging | VcpuState.Cr0ExtensionType | VcpuState.Cr0NumericError,
            Cr4 = VcpuState.Cr4Pae | VcpuState.Cr4OsFxsr | VcpuState.Cr4OsXmmExcpt,
            Efer = VcpuState.EferLongModeEnable | VcpuState.EferLongModeActive,
            Cr3 = Workload.Pml4,
            Cs = SegmentRegister.Flat(0x08, 0xB, longMode: true, defaultBig: false),
            Ss = SegmentRegister.Flat(0x10, 0x3, false, true),
            Ds = SegmentRegister.Flat(0x10, 0x3, false, true),
            Es = SegmentRegister.Flat(0x10, 0x3, false, true),
            Rip = entry,
            Rflags = 2,
        });
        cpu.Diagnostics = Console.Error.WriteLine;
        TimeSpan jitBefore = X86Cpu.TranslatorStatistics.JitTime;
        var clock = Stopwatch.StartNew();
        double cpuStart = CpuTime.Thread();
        CpuRunResult result = cpu.Run();
        double cpuSeconds = CpuTime.Thread() - cpuStart;
        clock.Stop();

        // Tier 1 compiles on a background thread: its time is added, so the CPU figure is the whole cost.
        double jitSeconds = (X86Cpu.TranslatorStatistics.JitTime - jitBefore).TotalSeconds;
        cpuSeconds += jitSeconds;
        s_lastTierLine = $"tier {cpu.Tier}: {cpu.TranslatedInstructions * 100.0 / Math.Max(1, cpu.InstructionsExecuted):F1}% of instructions in tier-1 code, "
            + $"{jitSeconds:F3} s compiling (in the CPU time), cache {X86Cpu.TranslatorStatistics.Resident} blocks / {X86Cpu.TranslatorStatistics.IlBytes:N0} IL bytes";
        if (cpu.Tier == ExecutionTier.Native)
        {
            // Native code is encoded on the vCPU's thread: its time is already in the CPU figure.
            NativeStatistics n = X86Cpu.NativeStatistics;
            s_lastTierLine += $"; native: {n.Compiled} blocks, {n.CodeBytes:N0} code bytes, {n.EncodeTime.TotalMilliseconds:F1} ms encoding "
                + $"({n.EncodeTime.TotalMicroseconds / Math.Max(1, n.Compiled):F1} us a block), {cpu.NativeInstructions * 100.0 / Math.Max(1, cpu.InstructionsExecuted):F1}% of instructions in native code itself";
        }
        if (result.Reason != CpuStopReason.Halted)
        {
            throw new InvalidOperationException($"the workload did not finish: {result} at RIP 0x{cpu.Rip:x}");
        }

        return (cpu.InstructionsExecuted, clock.Elapsed, cpuSeconds);
    }

    private static string? FindQemu()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
        {
            string candidate = Path.Combine(dir, "qemu-system-x86_64");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The best of two QEMU runs: wall seconds and CPU seconds (all of QEMU's threads).</summary>
    private static (double Wall, double Cpu) TimeQemu(string qemu, int iterations, bool sse)
    {
        (byte[] image, _) = Workload.Build(iterations, sse);
        string path = Path.Combine(Path.GetTempPath(), $"sharpvisor-mips-{Environment.ProcessId}-{iterations}.bin");
        File.WriteAllBytes(path, image);
        try
        {
            double best = double.MaxValue;
            double bestCpu = double.MaxValue;
            for (int run = 0; run < 2; run++)
            {
                var info = new ProcessStartInfo(qemu)
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                };
                foreach (string arg in new[]
                {
                    "-accel", "tcg", "-m", "128", "-display", "none", "-serial", "none", "-monitor", "none",
                    "-no-reboot", "-device", $"isa-debug-exit,iobase=0x{Workload.DebugExitPort:x},iosize=1", "-kernel", path,
                })
                {
                    info.ArgumentList.Add(arg);
                }

                var clock = Stopwatch.StartNew();
                double cpuStart = CpuTime.Children();
                using Process p = Process.Start(info)!;
                string stderr = p.StandardError.ReadToEnd();
                p.WaitForExit();
                clock.Stop();
                double cpu = CpuTime.Children() - cpuStart;
                if (p.ExitCode != 1)
                {
                    throw new InvalidOperationException($"QEMU exited with {p.ExitCode} (expected the debug-exit code 1): {stderr}");
                }

                best = Math.Min(best, clock.Elapsed.TotalSeconds);
                bestCpu = Math.Min(bestCpu, cpu);
            }

            return (best, bestCpu);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
