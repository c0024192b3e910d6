using SharpVisor.Host.Daemon;

namespace SharpVisor.Host.Tests;

/// <summary>The real `sharpvisor` command built beside the tests, run through dotnet.</summary>
internal static class SharpVisorCommand
{
    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "sharpvisor.dll");

    /// <summary>
    /// out/firecracker, the NativeAOT front end (scripts/build-firecracker.sh publishes it; ./test.sh
    /// runs that script). Its processes exec this test build's sharpvisor.dll at InstanceStart.
    /// </summary>
    public static string FrontEndPath
    {
        get
        {
            string path = Path.Combine(SharpVisor.TestSupport.RepositoryPaths.Root, "out", "firecracker");
            Assert.True(File.Exists(path), $"{path} is missing: scripts/build-firecracker.sh publishes it (./test.sh runs it)");
            return path;
        }
    }

    /// <summary>out/firecracker ARGUMENTS, with this test build as the JIT VMM it hands over to.</summary>
    public static System.Diagnostics.ProcessStartInfo FrontEnd(params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo(FrontEndPath) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment[SharpVisor.Host.Firecracker.VmmHandover.JitVmmVariable] = AssemblyPath;
        return start;
    }

    public static string Dotnet => Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";

    /// <summary>Starts each domain as `dotnet sharpvisor.dll vmm ...`: a real process per domain.</summary>
    public static ProcessVmmLauncher Launcher() => new(Dotnet, [AssemblyPath]);
}
