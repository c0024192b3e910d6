using System.Diagnostics;
using System.Globalization;
using SharpVisor.Bench.Mmu;
using SharpVisor.Emulator.Mmu;

// MMU micro-benchmark: shadow and nested paging side by side on the same 4-level guest
// address spaces, in one run. Each mode runs in its own process (so the JIT specializes the
// call sites for that mode only, as it would in a vCPU loop), and time is the process's CPU
// time (the machine is shared: wall time would count time spent descheduled). Prints CPU ns per
// operation (best of ROUNDS), walks per operation and the ratio nested/shadow.
//
// Usage: dotnet run -c Release --project bench/mmu -- [OPERATIONS (2000000)] [ROUNDS (5)]
if (args.Length > 0 && args[0] == "--mode")
{
    // --mode MODE OPERATIONS ROUNDS [SCENARIO]: one mode in this process (also handy under perf).
    RunMode(Enum.Parse<MmuMode>(args[1], ignoreCase: true), int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture), args.Length > 4 ? args[4] : null);
    return;
}

int operations = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 2_000_000;
int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
var lines = new Dictionary<MmuMode, Dictionary<string, string[]>>();
foreach (MmuMode mode in new[] { MmuMode.Shadow, MmuMode.Nested })
{
    lines[mode] = RunChild(mode, operations, rounds);
}

Console.WriteLine($"# MMU benchmark: {operations} operations per round, best of {rounds} rounds, CPU time");
Console.WriteLine($"{"scenario",-14} {"shadow ns/op",13} {"nested ns/op",13} {"nested/shadow",14} {"shadow walks/op",16} {"nested walks/op",16} {"2nd-level/op",13}");
foreach (Scenario scenario in Scenario.All)
{
    string[] s = lines[MmuMode.Shadow][scenario.Name];
    string[] n = lines[MmuMode.Nested][scenario.Name];
    double shadowNs = double.Parse(s[1], CultureInfo.InvariantCulture);
    double nestedNs = double.Parse(n[1], CultureInfo.InvariantCulture);
    Console.WriteLine($"{scenario.Name,-14} {shadowNs,13:F1} {nestedNs,13:F1} {nestedNs / shadowNs,14:F2} {s[2],16} {n[2],16} {n[3],13}   # {scenario.What}");
}

static Dictionary<string, string[]> RunChild(MmuMode mode, int operations, int rounds)
{
    var start = new ProcessStartInfo(Environment.ProcessPath!)
    {
        RedirectStandardOutput = true,
        UseShellExecute = false,
    };
    if (!Path.GetFileNameWithoutExtension(Environment.ProcessPath!).Equals("SharpVisor.Bench.Mmu", StringComparison.Ordinal))
    {
        start.ArgumentList.Add(typeof(Scenario).Assembly.Location); // run through "dotnet <dll>"
    }

    foreach (string arg in new[] { "--mode", mode.ToString(), operations.ToString(CultureInfo.InvariantCulture), rounds.ToString(CultureInfo.InvariantCulture) })
    {
        start.ArgumentList.Add(arg);
    }

    using Process child = Process.Start(start)!;
    var result = new Dictionary<string, string[]>();
    string? line;
    while ((line = child.StandardOutput.ReadLine()) is not null)
    {
        string[] fields = line.Split(' ');
        result[fields[0]] = fields;
    }

    child.WaitForExit();
    if (child.ExitCode != 0)
    {
        throw new InvalidOperationException($"{mode} benchmark process failed with exit code {child.ExitCode}");
    }

    return result;
}

static void RunMode(MmuMode mode, int operations, int rounds, string? only)
{
    using var process = Process.GetCurrentProcess();
    foreach (Scenario scenario in Scenario.All.Where(s => only is null || s.Name == only))
    {
        using var setup = new Setup(mode);
        scenario.Run(setup, Math.Min(operations, 20_000)); // warm up: JIT, shadow tables, TLB
        double best = double.MaxValue;
        MmuCounters before = setup.Mmu.Counters.Snapshot();
        long done = 0;
        for (int round = 0; round < rounds; round++)
        {
            process.Refresh();
            TimeSpan start = process.TotalProcessorTime;
            long ops = scenario.Run(setup, operations);
            process.Refresh();
            best = Math.Min(best, (process.TotalProcessorTime - start).TotalNanoseconds / ops);
            done += ops;
        }

        MmuCounters after = setup.Mmu.Counters;
        double walks = (double)(after.Walks - before.Walks) / done;
        double nestedWalks = (double)(after.NestedWalks - before.NestedWalks) / done;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{scenario.Name} {best:F1} {walks:F3} {nestedWalks:F3}"));
    }
}
