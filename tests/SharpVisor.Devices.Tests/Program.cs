using SharpVisor.Devices.Tests.Hardening;

namespace SharpVisor.Devices.Tests;

/// <summary>
/// The test assembly's entry point. The test host loads the assembly as a library and never calls
/// it; tests that need a process they can kill -9 start it with <c>dotnet &lt;this assembly&gt; VERB ...</c>.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == KillableBlockVmm.Verb)
        {
            return KillableBlockVmm.Run(args[1..]);
        }

        Console.Error.WriteLine($"usage: dotnet {Path.GetFileName(typeof(Program).Assembly.Location)} {KillableBlockVmm.Verb} IMAGE writeback|unsafe SECTOR SEED");
        return 2;
    }
}
