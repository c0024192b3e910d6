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

    /// <summary>The running daemon's pid (for `kill`, and for tests that stop a daemon the CLI started).</summary>
    public string DaemonPidFile => Path.Combine(Root, "sharpvisord.pid");

    public string DomainsDirectory => Path.Combine(Root, "domains");

    /// <summary>
    /// The cgroup this runtime directory's daemon keeps its domains under: "sharpvisor" for the
    /// default directory, else one named after the directory, so two daemons never share dom&lt;id&gt; groups.
    /// </summary>
    public string CgroupName => Root == DefaultPath
        ? "sharpvisor"
        : "sharpvisor-" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Root)))[..8].ToLowerInvariant();

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
