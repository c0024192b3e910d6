using SharpVisor.Host.Http;

namespace SharpVisor.Host.Daemon;

/// <summary>
/// Where the control plane keeps its sockets and state: /run/sharpvisor by default,
/// SHARPVISOR_RUNTIME_DIR to override. Mode 0700, sockets 0600.
/// </summary>
public sealed class RuntimeDirectory
{
    public const string EnvironmentVariable = "SHARPVISOR_RUNTIME_DIR";
    public const string DefaultPath = "/run/sharpvisor";

    public RuntimeDirectory(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    public string DaemonSocket => Path.Combine(Root, "sharpvisord.sock");

    public string DaemonLog => Path.Combine(Root, "sharpvisord.log");

    public string DomainsDirectory => Path.Combine(Root, "domains");

    public static RuntimeDirectory FromEnvironment() =>
        new(Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } path ? path : DefaultPath);

    public DomainPaths Domain(int id) => new(Path.Combine(DomainsDirectory, id.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    public void EnsureCreated()
    {
        foreach (string directory in new[] { Root, DomainsDirectory })
        {
            Directory.CreateDirectory(directory);
            UnixSocketFiles.RestrictToOwner(directory);
        }
    }
}
