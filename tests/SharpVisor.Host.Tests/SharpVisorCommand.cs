using SharpVisor.Host.Daemon;

namespace SharpVisor.Host.Tests;

/// <summary>The real `sharpvisor` command built beside the tests, run through dotnet.</summary>
internal static class SharpVisorCommand
{
    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "sharpvisor.dll");

    public static string Dotnet => Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";

    /// <summary>Starts each domain as `dotnet sharpvisor.dll vmm ...`: a real process per domain.</summary>
    public static ProcessVmmLauncher Launcher() => new(Dotnet, [AssemblyPath]);
}
