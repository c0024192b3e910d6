using System.Diagnostics;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// With SHARPVISOR_STARTUP_TRACE=1 the VMM writes, when its API is ready, the wall and CPU time
/// of each start-up step since the process started, and every assembly loaded so far, to standard
/// error: start-up work and what loads before InstanceStart are measured (bench/vmm-startup,
/// FirecrackerStartupTests), not guessed.
/// </summary>
public static class StartupTrace
{
    public const string Variable = "SHARPVISOR_STARTUP_TRACE";
    public const string ReadyPrefix = "[startup] first answer after ";
    public const string AssemblyPrefix = "[startup] loaded ";
    public const string EndLine = "[startup] end";

    private static readonly bool s_enabled = Environment.GetEnvironmentVariable(Variable) == "1";
    private static readonly List<string> s_marks = [];
    private static bool s_reported;

    /// <summary>Notes that a start-up step ended (cheap when tracing is off).</summary>
    public static void Mark(string step)
    {
        if (s_enabled)
        {
            s_marks.Add($"[startup] {step}: {SinceStart().TotalMilliseconds:F1} ms wall, {Environment.CpuUsage.TotalTime.TotalMilliseconds:F1} ms CPU, {Jit()}");
        }
    }

    /// <summary>At the first answer the API gives: writes the steps and the loaded assemblies, once.</summary>
    public static void FirstAnswer()
    {
        if (!s_enabled || s_reported)
        {
            return;
        }

        s_reported = true;

        foreach (string mark in s_marks)
        {
            System.Console.Error.WriteLine(mark);
        }

        System.Console.Error.WriteLine($"{ReadyPrefix}{SinceStart().TotalMilliseconds:F1} ms ({Environment.CpuUsage.TotalTime.TotalMilliseconds:F1} ms CPU, {Jit()})");
        foreach (System.Reflection.Assembly assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            System.Console.Error.WriteLine($"{AssemblyPrefix}{assembly.GetName().Name}");
        }

        System.Console.Error.WriteLine(EndLine);
    }

    private static string Jit() =>
        $"{System.Runtime.JitInfo.GetCompiledMethodCount()} methods jitted in {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:F1} ms";

    private static TimeSpan SinceStart() => DateTime.Now - Process.GetCurrentProcess().StartTime;
}
