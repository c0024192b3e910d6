using System.Reflection;

namespace SharpVisor.Host.Firecracker;

/// <summary>Version strings: SharpVisor's own, and the Firecracker API version it follows.</summary>
public static class VmmVersion
{
    /// <summary>The Firecracker API (swagger) version whose requests SharpVisor serves.</summary>
    public const string FirecrackerApi = "1.17.0";

    public static string Current { get; } =
        typeof(VmmVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
