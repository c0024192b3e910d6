using System.Diagnostics;

namespace SharpVisor.Host.Firecracker;

/// <summary>
/// With SHARPVISOR_STARTUP_TRACE=1 the VMM writes, when its API is ready, the time since the
/// process started and every assembly loaded so far to standard error: start-up work and what
/// loads before InstanceStart are checked (bench/vmm-startup, FirecrackerStartupTests), not guessed.
/// </summary>
public static class StartupTrace
{
    public const string Variable = "SHARPVISOR_STARTUP_TRACE";
    public const string ReadyPrefix = "[startup] api ready after ";
    public const string AssemblyPrefix = "[startup] loaded ";

    public static void ApiReady()
    {
        if (Environment.GetEnvironmentVariable(Variable) != "1")
        {
            return;
        }

        TimeSpan since = DateTime.Now - Process.GetCurrentProcess().StartTime;
        System.Console.Error.WriteLine($"{ReadyPrefix}{since.TotalMilliseconds:F1} ms");
        foreach (System.Reflection.Assembly assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            System.Console.Error.WriteLine($"{AssemblyPrefix}{assembly.GetName().Name}");
        }
    }
}
